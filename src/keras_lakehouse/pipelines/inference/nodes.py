"""Batch inference: new raw files → the ingestion checks → Spark scoring → ``predictions``.

Images and texts to score go through the same checks as training data (bad records land in an
inference quarantine with a reason), then the ``champion`` version of each registered model scores
the accepted ones with ``mapInPandas``. ``predictions`` is MERGEd on (modality, key, model name,
model version): re-scoring the same input with the same version replaces its rows.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.ingest.routing import (
    IMAGES_TO_SCORE_COLUMNS,
    INFERENCE_IMAGES_QUARANTINE_COLUMNS,
    INFERENCE_TEXTS_QUARANTINE_COLUMNS,
    TEXTS_TO_SCORE_COLUMNS,
    route_checked,
)
from keras_lakehouse.ingest.spark_checks import check_image_files, check_text_files
from keras_lakehouse.params import (
    ImageIngestionParams,
    InferenceParams,
    ServingParams,
    TextIngestionParams,
)
from keras_lakehouse.serving.mlflow_model import IMAGE_COLUMN, TEXT_COLUMN
from keras_lakehouse.serving.scoring import PREDICTIONS_COLUMNS, ModelVersion, fetch_model, score

logger = logging.getLogger(__name__)


def check_images_to_score(
    raw_images: DataFrame, settings: ImageIngestionParams
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """The ingestion checks for images without labels.

    Args:
        raw_images: Rows of Spark's ``binaryFile`` source over the images to score.
        settings: The ``ingestion.images`` parameters.

    Returns:
        The accepted images, the rejected ones (with a reason) and the counts.
    """
    checked = check_image_files(raw_images, settings, labelled=False)
    return route_checked(
        checked,
        "images to score",
        IMAGES_TO_SCORE_COLUMNS,
        INFERENCE_IMAGES_QUARANTINE_COLUMNS,
        accepted="accepted",
    )


def check_texts_to_score(
    raw_texts: DataFrame, settings: TextIngestionParams
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """The ingestion checks for texts without labels (``id,text`` CSV or JSON lines).

    Args:
        raw_texts: Rows of Spark's ``binaryFile`` source over the texts to score.
        settings: The ``ingestion.texts`` parameters.

    Returns:
        The accepted texts, the rejected ones (with a reason) and the counts.
    """
    checked = check_text_files(raw_texts, settings, labelled=False)
    return route_checked(
        checked,
        "texts to score",
        TEXTS_TO_SCORE_COLUMNS,
        INFERENCE_TEXTS_QUARANTINE_COLUMNS,
        accepted="accepted",
    )


def score_images(
    images: DataFrame, serving: ServingParams, inference: InferenceParams
) -> DataFrame:
    """Prediction rows for the accepted images, keyed by the SHA-256 of their bytes.

    Args:
        images: The accepted images (``key``, ``path``, ``content``).
        serving: The ``serving`` parameters (alias, model cache).
        inference: The ``inference`` parameters (which registered model scores images).

    Returns:
        One row per image in the ``predictions`` layout.
    """
    model = _champion(serving, inference.image_model)
    frame = images.select("key", "path", F.col("content").alias(IMAGE_COLUMN))
    scored = score(
        frame, model, modality="image", key="key", source="path", input_column=IMAGE_COLUMN,
        rows_per_task=inference.rows_per_scoring_task,
    )  # fmt: skip
    return _scored_once(scored)


def score_texts(texts: DataFrame, serving: ServingParams, inference: InferenceParams) -> DataFrame:
    """Prediction rows for the accepted texts, keyed by their id (source: ``file:line``).

    Args:
        texts: The accepted texts (``id``, ``text``, ``source``, ``line``).
        serving: The ``serving`` parameters (alias, model cache).
        inference: The ``inference`` parameters (which registered model scores texts).

    Returns:
        One row per text in the ``predictions`` layout.
    """
    model = _champion(serving, inference.text_model)
    frame = texts.select(
        F.col("id").alias("key"),
        F.concat_ws(":", "source", F.col("line").cast("string")).alias("source"),
        TEXT_COLUMN,
    )
    scored = score(
        frame, model, modality="text", key="key", source="source", input_column=TEXT_COLUMN,
        rows_per_task=inference.rows_per_scoring_task,
    )  # fmt: skip
    return _scored_once(scored)


def _scored_once(scored: DataFrame) -> DataFrame:
    """The prediction rows, computed now and kept by Spark (``localCheckpoint``): the MERGE into
    ``predictions`` and monitoring both read them, and scoring twice would run the model twice.
    Prediction rows are small (no input content)."""
    return scored.localCheckpoint(eager=True)


def _champion(serving: ServingParams, name: str) -> ModelVersion:
    """The version of ``name`` that has the serving alias, its files fetched for the executors."""
    model = fetch_model(name, serving.alias, serving.model_cache_dir)
    logger.info("Scoring with %s v%s (%s).", model.name, model.version, serving.alias)
    return model


def collect_predictions(
    image_predictions: DataFrame,
    text_predictions: DataFrame,
    image_counts: dict[str, Any],
    text_counts: dict[str, Any],
) -> tuple[DataFrame, dict[str, Any]]:
    """Both modalities' predictions as one batch for the ``predictions`` table, and a summary.

    Args:
        image_predictions: The output of ``score_images``.
        text_predictions: The output of ``score_texts``.
        image_counts: The counts of ``check_images_to_score``.
        text_counts: The counts of ``check_texts_to_score``.

    Returns:
        The predictions to MERGE, and the counts of both modalities.
    """
    predictions = image_predictions.select(*PREDICTIONS_COLUMNS).unionByName(
        text_predictions.select(*PREDICTIONS_COLUMNS)
    )
    summary = {"images": image_counts, "texts": text_counts}
    logger.info("Inference input: %s", summary)
    return predictions, summary

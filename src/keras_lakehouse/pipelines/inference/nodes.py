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

from keras_lakehouse.params import InferenceParams, ServingParams
from keras_lakehouse.pipelines.ingestion.nodes import (
    check_raw_images,
    check_raw_texts,
    split_checked,
)
from keras_lakehouse.serving.mlflow_model import IMAGE_COLUMN, TEXT_COLUMN
from keras_lakehouse.serving.scoring import PREDICTIONS_COLUMNS, ModelVersion, fetch_model, score

logger = logging.getLogger(__name__)

IMAGES_TO_SCORE_COLUMNS = ("key", "path", "content")
TEXTS_TO_SCORE_COLUMNS = ("id", "text", "source", "line")
IMAGES_QUARANTINE_COLUMNS = ("path", "key", "reason", "detail")
TEXTS_QUARANTINE_COLUMNS = ("source", "line", "id", "reason", "detail", "raw")


def check_images_to_score(
    raw_images: DataFrame, params: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """The ingestion checks for images without labels.

    Returns:
        The accepted images, the rejected ones (with a reason) and the counts.
    """
    checked = check_raw_images(raw_images, params, labelled=False)
    return split_checked(
        checked,
        "images to score",
        IMAGES_TO_SCORE_COLUMNS,
        IMAGES_QUARANTINE_COLUMNS,
        accepted="accepted",
    )


def check_texts_to_score(
    raw_texts: DataFrame, params: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """The ingestion checks for texts without labels (``id,text`` CSV or JSON lines).

    Returns:
        The accepted texts, the rejected ones (with a reason) and the counts.
    """
    checked = check_raw_texts(raw_texts, params, labelled=False)
    return split_checked(
        checked,
        "texts to score",
        TEXTS_TO_SCORE_COLUMNS,
        TEXTS_QUARANTINE_COLUMNS,
        accepted="accepted",
    )


def score_images(
    images: DataFrame, serving: dict[str, Any], inference: dict[str, Any]
) -> DataFrame:
    """Prediction rows for the accepted images, keyed by the SHA-256 of their bytes."""
    model = _champion(serving, InferenceParams.model_validate(inference).image_model)
    frame = images.select("key", "path", F.col("content").alias(IMAGE_COLUMN))
    return score(
        frame, model, modality="image", key="key", source="path", input_column=IMAGE_COLUMN
    )


def score_texts(texts: DataFrame, serving: dict[str, Any], inference: dict[str, Any]) -> DataFrame:
    """Prediction rows for the accepted texts, keyed by their id (source: ``file:line``)."""
    model = _champion(serving, InferenceParams.model_validate(inference).text_model)
    frame = texts.select(
        F.col("id").alias("key"),
        F.concat_ws(":", "source", F.col("line").cast("string")).alias("source"),
        TEXT_COLUMN,
    )
    return score(
        frame, model, modality="text", key="key", source="source", input_column=TEXT_COLUMN
    )


def _champion(serving: dict[str, Any], name: str) -> ModelVersion:
    """The version of ``name`` that has the serving alias, its files fetched for the executors."""
    settings = ServingParams.model_validate(serving)
    model = fetch_model(name, settings.alias, settings.model_cache_dir)
    logger.info("Scoring with %s v%s (%s).", model.name, model.version, settings.alias)
    return model


def collect_predictions(
    image_predictions: DataFrame,
    text_predictions: DataFrame,
    image_counts: dict[str, Any],
    text_counts: dict[str, Any],
) -> tuple[DataFrame, dict[str, Any]]:
    """Both modalities' predictions as one batch for the ``predictions`` table, and a summary."""
    predictions = image_predictions.select(*PREDICTIONS_COLUMNS).unionByName(
        text_predictions.select(*PREDICTIONS_COLUMNS)
    )
    summary = {"images": image_counts, "texts": text_counts}
    logger.info("Inference input: %s", summary)
    return predictions, summary

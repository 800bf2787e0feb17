"""Training nodes that profile what each model was trained on, for monitoring to compare with.

Each profile is logged with the model's training run (``monitoring/training_profile.json``, so it
travels with the registered version) and saved under ``08_reporting/monitoring/``.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.params import ImageIngestionParams
from keras_lakehouse.serving.serving_code import labels_by_index

logger = logging.getLogger(__name__)


def profile_cnn_training(
    model: Any,
    images_silver: DeltaSnapshot,
    images_bronze: DataFrame,
    label_map: dict[str, int],
    training_metrics: dict[str, Any],
    images: ImageIngestionParams,
    image_size: int,
) -> dict[str, Any]:
    """The CNN's training profile, logged with its run.

    Args:
        model: The trained CNN.
        images_silver: The silver version it was trained on.
        images_bronze: The bronze images (original bytes by key).
        label_map: Label → index.
        training_metrics: The training node's metrics (its MLflow run).
        images: The ``ingestion.images`` parameters (pixel cap).
        image_size: ``preprocessing.images.image_size``.
    """
    from keras_lakehouse.monitoring.training_profile import (
        image_training_profile,
        log_training_profile,
    )

    run_id = training_metrics["mlflow"]["run_id"]
    document = image_training_profile(
        model,
        images_silver,
        images_bronze,
        labels_by_index(label_map),
        image_size=image_size,
        max_pixels=images.max_pixels,
        run={"name": "cnn", "run_id": run_id},
    )
    log_training_profile(run_id, document)
    logger.info("cnn: training profile of %d features logged.", len(document["features"]))
    return document


def profile_lstm_training(
    model: Any,
    texts_silver: DeltaSnapshot,
    label_map: dict[str, int],
    vocabulary: list[str],
    training_metrics: dict[str, Any],
    sequence_length: int,
) -> dict[str, Any]:
    """The LSTM's training profile, logged with its run (arguments as ``profile_cnn_training``,
    with the fitted ``vocabulary`` for the out-of-vocabulary rate)."""
    from keras_lakehouse.monitoring.training_profile import (
        log_training_profile,
        text_training_profile,
    )

    run_id = training_metrics["mlflow"]["run_id"]
    document = text_training_profile(
        model,
        texts_silver,
        vocabulary,
        labels_by_index(label_map),
        sequence_length=sequence_length,
        run={"name": "lstm", "run_id": run_id},
    )
    log_training_profile(run_id, document)
    logger.info("lstm: training profile of %d features logged.", len(document["features"]))
    return document

"""Training nodes: one Keras model per modality, one MLflow run per model."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import keras
import numpy as np

from keras_lakehouse.loader import (
    DeltaSnapshot,
    ImageColumns,
    TextColumns,
    iter_batches,
    local_path,
)
from keras_lakehouse.models import build_cnn, build_lstm, compile_model
from keras_lakehouse.params import TrainingParams
from keras_lakehouse.tracking import log_history, log_trained_model, training_run
from keras_lakehouse.training import TrainingJob, evaluate, train, use_mixed_precision_on_gpu

logger = logging.getLogger(__name__)

EXAMPLE_ROWS = 2


def train_cnn(
    images_silver: DeltaSnapshot,
    image_label_map: dict[str, int],
    training: dict[str, Any],
    image_size: int,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the CNN on the pinned ``images_silver`` snapshot and log it to MLflow.

    Args:
        images_silver: The silver images table, pinned at a version.
        image_label_map: Label → index, fitted in preprocessing.
        training: The ``training`` parameters.
        image_size: Side of the stored images (``preprocessing.images.image_size``).

    Returns:
        The trained model and its metrics (history per epoch, test loss and accuracy).
    """
    settings = TrainingParams.model_validate(training)
    cnn = settings.cnn
    job = TrainingJob(
        name="cnn",
        build=partial(
            _compiled,
            build_cnn,
            {
                "image_size": image_size,
                "num_classes": len(image_label_map),
                "filters": tuple(cnn.filters),
                "dense_units": cnn.dense_units,
                "batch_norm": cnn.batch_norm,
                "dropout": cnn.dropout,
            },
            cnn.optimizer,
            cnn.learning_rate,
        ),
        decode=ImageColumns(image_size),
        fit=cnn,
        seed=settings.seed,
        augmentation=cnn.augmentation,
    )
    return _train_and_log(
        job,
        images_silver,
        settings,
        params={"image_size": image_size, **cnn.model_dump()},
        artifacts={"label_map.json": image_label_map},
    )


def train_lstm(
    texts_silver: DeltaSnapshot,
    text_label_map: dict[str, int],
    vocabulary: list[str],
    training: dict[str, Any],
    sequence_length: int,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the stacked LSTM on the pinned ``texts_silver`` snapshot and log it to MLflow.

    Returns:
        The trained model and its metrics (history per epoch, test loss and accuracy).
    """
    settings = TrainingParams.model_validate(training)
    lstm = settings.lstm
    job = TrainingJob(
        name="lstm",
        build=partial(
            _compiled,
            build_lstm,
            {
                "vocabulary_size": len(vocabulary),
                "sequence_length": sequence_length,
                "num_classes": len(text_label_map),
                "embedding_dim": lstm.embedding_dim,
                "units": lstm.units,
                "dropout": lstm.dropout,
            },
            lstm.optimizer,
            lstm.learning_rate,
        ),
        decode=TextColumns(sequence_length),
        fit=lstm,
        seed=settings.seed,
    )
    return _train_and_log(
        job,
        texts_silver,
        settings,
        params={"sequence_length": sequence_length, **lstm.model_dump()},
        artifacts={"label_map.json": text_label_map, "vocabulary.json": vocabulary},
    )


def _compiled(
    builder: Any, arguments: dict[str, Any], optimizer: str, learning_rate: float
) -> keras.Model:
    return compile_model(builder(**arguments), optimizer=optimizer, learning_rate=learning_rate)


def _train_and_log(
    job: TrainingJob,
    snapshot: DeltaSnapshot,
    settings: TrainingParams,
    *,
    params: dict[str, Any],
    artifacts: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    mixed_precision = use_mixed_precision_on_gpu()
    lineage = {
        "input.table": snapshot.location,
        "input.delta_version": snapshot.version,
        **{f"input.rows.{split}": count for split, count in snapshot.split_counts.items()},
    }
    run_params = {
        **params,
        "seed": settings.seed,
        "strategy": settings.strategy,
        "num_devices": settings.num_devices,
        "num_workers": settings.num_workers,
        "mixed_precision": mixed_precision,
    }
    with training_run(job.name, params=run_params, tags=lineage):
        model, history = train(
            job,
            snapshot,
            strategy=settings.strategy,
            num_devices=settings.num_devices,
            num_workers=settings.num_workers,
        )
        log_history(history)
        metrics = evaluate(job, model, snapshot)
        import mlflow

        mlflow.log_metrics({**metrics, "epochs_run": len(history.get("loss", []))})
        log_trained_model(model, _example(job, snapshot), artifacts=artifacts)
    logger.info("%s: %s", job.name, metrics)
    return model, {"history": history, **metrics, "input": lineage}


def _example(job: TrainingJob, snapshot: DeltaSnapshot) -> np.ndarray:
    """A couple of test rows as the model sees them: the signature and input example."""
    files = [local_path(name) for name in snapshot.files]
    x, _ = next(iter_batches(files, job.decode, batch_size=EXAMPLE_ROWS, split="test"))
    return x

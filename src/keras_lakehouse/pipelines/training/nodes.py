"""Training nodes: one Keras model per modality, one MLflow run per model."""

from __future__ import annotations

import io
import logging
from functools import partial
from typing import Any

import keras
import pandas as pd
from PIL import Image

from keras_lakehouse.ingest.images import pixels_to_array
from keras_lakehouse.params import ImagePreprocessingParams, TrainingParams
from keras_lakehouse.platform.sbom import log_sbom
from keras_lakehouse.platform.tracking import log_delta_input, log_history, training_run
from keras_lakehouse.serving.mlflow_model import (
    IMAGE_COLUMN,
    TEXT_COLUMN,
    ServingSpec,
    log_serving_model,
)
from keras_lakehouse.training.job import TrainingJob, evaluate, train, use_mixed_precision_on_gpu
from keras_lakehouse.training.loader import DeltaSnapshot, ImageColumns, TextColumns, read_split
from keras_lakehouse.training.models import build_cnn, build_lstm, compile_model

logger = logging.getLogger(__name__)

EXAMPLE_ROWS = 2


def train_cnn(
    images_silver: DeltaSnapshot,
    image_label_map: dict[str, int],
    training: dict[str, Any],
    images: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the CNN on the pinned ``images_silver`` snapshot and log it to MLflow.

    The MLflow model takes encoded image bytes and resizes them as preprocessing did.

    Args:
        images_silver: The silver images table, pinned at a version.
        image_label_map: Label → index, fitted in preprocessing.
        training: The ``training`` parameters.
        images: The ``preprocessing.images`` parameters (stored size, pixel cap).

    Returns:
        The trained model and its metrics (history per epoch, test loss and accuracy, the MLflow
        run and logged model).
    """
    settings = TrainingParams.model_validate(training)
    image_settings = ImagePreprocessingParams.model_validate(images)
    image_size = image_settings.image_size
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
        spec=ServingSpec.from_label_map(
            "image",
            image_label_map,
            image_size=image_size,
            max_pixels=image_settings.max_pixels,
        ),
        example=_image_example(images_silver, image_size),
    )


def train_lstm(
    texts_silver: DeltaSnapshot,
    text_label_map: dict[str, int],
    vocabulary: list[str],
    training: dict[str, Any],
    sequence_length: int,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the stacked LSTM on the pinned ``texts_silver`` snapshot and log it to MLflow.

    The MLflow model takes raw texts and vectorizes them with the preprocessing layer.

    Returns:
        The trained model and its metrics (history per epoch, test loss and accuracy, the MLflow
        run and logged model).
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
        spec=ServingSpec.from_label_map(
            "text", text_label_map, sequence_length=sequence_length, vocabulary=vocabulary
        ),
        example=pd.DataFrame(
            {TEXT_COLUMN: read_split(texts_silver, ["text"], "test", limit=EXAMPLE_ROWS)["text"]}
        ),
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
    spec: ServingSpec,
    example: pd.DataFrame,
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
    with training_run(job.name, params=run_params, tags=lineage) as run:
        log_delta_input(snapshot.location, snapshot.version, name=f"{job.name}_silver")
        model, history = train(
            job,
            snapshot,
            strategy=settings.strategy,
            num_devices=settings.num_devices,
            num_workers=settings.num_workers,
            allow_open_grpc_ports_locally=settings.allow_open_grpc_ports_locally,
        )
        log_history(history)
        metrics = evaluate(job, model, snapshot)
        import mlflow

        mlflow.log_metrics({**metrics, "epochs_run": len(history.get("loss", []))})
        for name, value in artifacts.items():
            mlflow.log_dict(value, name)
        logged = log_serving_model(model, spec, example)
        log_sbom()  # the environment it was trained in, beside the model (sbom.cdx.json)
    logger.info("%s: %s", job.name, metrics)
    tracking = {"run_id": run.info.run_id, "model_uri": logged.model_uri}
    return model, {"history": history, **metrics, "input": lineage, "mlflow": tracking}


def _image_example(snapshot: DeltaSnapshot, image_size: int) -> pd.DataFrame:
    """A couple of test images as a client sends them (PNG bytes): the MLflow input example."""
    pixels = read_split(snapshot, ["image"], "test", limit=EXAMPLE_ROWS)["image"].to_pylist()
    encoded = []
    for raw in pixels:
        buffer = io.BytesIO()
        Image.fromarray(pixels_to_array(raw, image_size)).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return pd.DataFrame({IMAGE_COLUMN: encoded})

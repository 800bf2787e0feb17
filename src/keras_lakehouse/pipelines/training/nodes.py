"""Training nodes: one Keras model per modality, one MLflow run per model.

Keras (``training.models``, ``training.job``) loads when a node runs, not with this module (Kedro
imports every pipeline's nodes at each command). Kedro resolves the node functions' annotations
at run time, to build the typed ``params:`` inputs: the Keras model they return is ``Any``.
"""

from __future__ import annotations

import io
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
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
from keras_lakehouse.training.loader import ImageColumns, TextColumns, read_split
from keras_lakehouse.training.spec import TrainingJob

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

EXAMPLE_ROWS = 2


def train_cnn(
    images_silver: DeltaSnapshot,
    image_label_map: dict[str, int],
    training: TrainingParams,
    images: ImagePreprocessingParams,
) -> tuple[Any, dict[str, Any]]:
    """Train the CNN on the pinned ``images_silver`` snapshot and log it to MLflow.

    The MLflow model takes encoded image bytes and resizes them as preprocessing did.

    Args:
        images_silver: The silver images table, pinned at a version.
        image_label_map: Label → index, fitted in preprocessing.
        training: The ``training`` parameters (Kedro builds the model from
            ``params:training``).
        images: The ``preprocessing.images`` parameters (stored size, pixel cap).

    Returns:
        The trained ``keras.Model`` and its metrics (history per epoch, test loss and accuracy,
        the MLflow run and logged model).
    """
    from keras_lakehouse.training.models import build_cnn

    image_size = images.image_size
    cnn = training.cnn
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
        seed=training.seed,
        augmentation=cnn.augmentation,
    )
    return _train_and_log(
        job,
        images_silver,
        training,
        params={"image_size": image_size, **cnn.model_dump()},
        artifacts={"label_map.json": image_label_map},
        spec=ServingSpec.from_label_map(
            "image",
            image_label_map,
            image_size=image_size,
            max_pixels=images.max_pixels,
        ),
        example=_image_example(images_silver, image_size),
    )


def train_lstm(
    texts_silver: DeltaSnapshot,
    text_label_map: dict[str, int],
    vocabulary: list[str],
    training: TrainingParams,
    sequence_length: int,
) -> tuple[Any, dict[str, Any]]:
    """Train the stacked LSTM on the pinned ``texts_silver`` snapshot and log it to MLflow.

    The MLflow model takes raw texts and vectorizes them with the preprocessing layer.

    Args:
        texts_silver: The silver texts table, pinned at a version.
        text_label_map: Label → index, fitted in preprocessing.
        vocabulary: The token vocabulary, fitted in preprocessing.
        training: The ``training`` parameters (Kedro builds the model from
            ``params:training``).
        sequence_length: Tokens per text (``preprocessing.texts.sequence_length``).

    Returns:
        The trained ``keras.Model`` and its metrics (history per epoch, test loss and accuracy,
        the MLflow run and logged model).
    """
    from keras_lakehouse.training.models import build_lstm

    lstm = training.lstm
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
        seed=training.seed,
    )
    return _train_and_log(
        job,
        texts_silver,
        training,
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
    from keras_lakehouse.training.models import compile_model

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
    import mlflow

    from keras_lakehouse.training.job import evaluate, train, use_mixed_precision_on_gpu

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

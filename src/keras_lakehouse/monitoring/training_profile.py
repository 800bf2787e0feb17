"""The training profile of a model version: logged with its MLflow run, read back by scoring runs.

At training, the profile describes the model's *train split* (input features and labels, by Spark
over the pinned silver version — images from their bronze bytes, as clients send them) and the
model's *outputs on the validation split* (predicted classes and confidence, counted batch by
batch as the loader streams the split). It is logged as ``monitoring/training_profile.json`` in
the training run, so a scoring run reads the profile of the exact version it scored with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot, local_path
from keras_lakehouse.datasets.delta_table import DeltaTableDataset
from keras_lakehouse.monitoring.features import (
    CONFIDENCE_EDGES,
    IMAGE_FEATURES,
    LABEL_FEATURES,
    TEXT_FEATURES,
    image_features,
    text_features,
)
from keras_lakehouse.monitoring.histograms import CATEGORICAL, NUMERIC, Histogram, bin_names
from keras_lakehouse.monitoring.profiles import profile_document, profile_frame
from keras_lakehouse.training.loader import ImageColumns, TextColumns, iter_batches

logger = logging.getLogger(__name__)

PROFILE_ARTIFACT = "monitoring/training_profile.json"
VOCABULARY_ARTIFACT = "vocabulary.json"
PREDICT_BATCH = 256


def train_split(snapshot: DeltaSnapshot, columns: list[str]) -> DataFrame:
    """The train split's rows of the pinned silver version, as a Spark DataFrame."""
    where = (
        {"filepath": snapshot.location}
        if "/" in snapshot.location
        else {"table": snapshot.location}
    )
    frame = DeltaTableDataset(**where).at_version(snapshot.version).load()
    return frame.filter(F.col("split") == "train").select(*columns)


def image_training_profile(
    model: Any,
    snapshot: DeltaSnapshot,
    bronze: DataFrame,
    labels: list[str],
    *,
    image_size: int,
    max_pixels: int,
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """The CNN's training profile (see the module docstring).

    Args:
        model: The trained Keras model.
        snapshot: The silver images version it was trained on.
        bronze: ``images_bronze`` (the original bytes, by ``key``).
        labels: Class names by index.
        image_size: The stored image size (how the loader decodes silver rows).
        max_pixels: The ingestion pixel cap.
        run: The model's name (registered), MLflow run id.
    """
    rows = train_split(snapshot, ["key", "label"]).join(
        bronze.select("key", "content"), "key", "inner"
    )
    histograms = profile_frame(image_features(rows, "content", max_pixels), IMAGE_FEATURES)
    histograms |= profile_frame(rows.select("label"), LABEL_FEATURES)
    histograms |= output_histograms(model, snapshot, ImageColumns(image_size), labels)
    return _document("image", snapshot, run, histograms)


def text_training_profile(
    model: Any,
    snapshot: DeltaSnapshot,
    vocabulary: list[str],
    labels: list[str],
    *,
    sequence_length: int,
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """The LSTM's training profile (see the module docstring)."""
    rows = train_split(snapshot, ["text", "label"])
    histograms = profile_frame(text_features(rows, "text", vocabulary), TEXT_FEATURES)
    histograms |= profile_frame(rows.select("label"), LABEL_FEATURES)
    histograms |= output_histograms(model, snapshot, TextColumns(sequence_length), labels)
    return _document("text", snapshot, run, histograms)


def output_histograms(
    model: Any, snapshot: DeltaSnapshot, decode: ImageColumns | TextColumns, labels: list[str]
) -> dict[str, Histogram]:
    """Predicted classes and confidence over the validation split, counted batch by batch."""
    files = [local_path(name) for name in snapshot.files]
    predicted = np.zeros(len(labels), dtype=np.int64)
    confidence = np.zeros(len(CONFIDENCE_EDGES) + 1, dtype=np.int64)
    for inputs, _ in iter_batches(files, decode, batch_size=PREDICT_BATCH, split="val"):
        probabilities = np.asarray(model.predict(inputs, verbose=0), dtype=np.float64)
        predicted += np.bincount(probabilities.argmax(axis=1), minlength=len(labels))
        top = probabilities.max(axis=1)
        confidence += np.bincount(
            np.searchsorted(CONFIDENCE_EDGES, top, side="right"), minlength=len(confidence)
        )
    return {
        "predicted_label": Histogram(
            kind=CATEGORICAL,
            counts={label: int(count) for label, count in zip(labels, predicted, strict=True)},
        ),
        "confidence": Histogram(
            kind=NUMERIC,
            counts={
                name: int(count)
                for name, count in zip(bin_names(CONFIDENCE_EDGES), confidence, strict=True)
            },
            edges=CONFIDENCE_EDGES,
        ),
    }


def log_training_profile(run_id: str, document: Mapping[str, Any]) -> None:
    """Log ``document`` as ``PROFILE_ARTIFACT`` in the training run ``run_id``."""
    import mlflow

    mlflow.MlflowClient().log_dict(run_id, dict(document), PROFILE_ARTIFACT)


def version_run(name: str, version: str) -> str | None:
    """The MLflow run that logged ``name`` v``version``."""
    import mlflow

    return mlflow.MlflowClient().get_model_version(name, version).run_id


def load_run_artifact(run_id: str | None, path: str) -> Any | None:
    """A JSON artifact of a run; ``None`` when the run or the artifact does not exist."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    folder = path.rpartition("/")[0] or None
    try:
        listed = {item.path for item in mlflow.MlflowClient().list_artifacts(run_id, folder)}
        if path not in listed:  # load_dict of a missing local artifact fails with a TypeError
            return None
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
    except (MlflowException, OSError) as error:
        logger.debug("No %s in run %s: %s", path, run_id, error)
        return None


def scored_version(predictions: DataFrame, name: str, alias: str) -> dict[str, Any]:
    """The version named by the run's prediction rows (the one that scored), else the alias's."""
    import mlflow

    found = predictions.select("model_name", "model_version").limit(1).collect()
    if found:
        name, version = found[0]["model_name"], str(found[0]["model_version"])
    else:
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    return {"name": name, "version": version, "run_id": version_run(name, version)}


def training_profile_of(model: Mapping[str, Any]) -> dict[str, Any] | None:
    """The training profile logged with ``model``'s run; ``None`` (warned) without one."""
    profile = load_run_artifact(model["run_id"], PROFILE_ARTIFACT)
    if profile is None:
        logger.warning(
            "%s v%s has no training profile (%s; trained before monitoring existed?): its drift "
            "is reported, not judged. Train a new version to judge it.",
            model["name"],
            model["version"],
            PROFILE_ARTIFACT,
        )
    return profile


def _document(
    modality: str,
    snapshot: DeltaSnapshot,
    run: Mapping[str, Any],
    histograms: Mapping[str, Histogram],
) -> dict[str, Any]:
    rows = snapshot.split_counts.get("train", 0)
    source = {"table": snapshot.location, "delta_version": snapshot.version, "split": "train"}
    return profile_document(
        scope="training",
        modality=modality,
        model=run,
        source=source,
        rows=rows,
        histograms=histograms,
    )

"""Evaluation nodes: test-split metrics and pictures per model, then the registry's quality gate.

The metrics come from the trained Keras model over the pinned silver snapshot (the loader's test
split, in file order); they go to a JSON report, to PNGs and to the model's training run in MLflow.
The registry node registers the logged raw-input model, and moves ``champion`` only when the new
version beats the current champion, scored by Spark on the same test items, by ``min_delta``.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.evaluation.metrics import (
    classification_report,
    flat_metrics,
    metrics_from_confusion,
)
from keras_lakehouse.evaluation.plots import (
    confusion_matrix_figure,
    image_grid_figure,
    training_curves_figure,
)
from keras_lakehouse.params import EvaluationParams, ServingParams
from keras_lakehouse.serving.mlflow_model import IMAGE_COLUMN, TEXT_COLUMN, labels_by_index
from keras_lakehouse.serving.registry import register_and_promote
from keras_lakehouse.serving.scoring import fetch_version, score
from keras_lakehouse.training.loader import (
    DeltaSnapshot,
    ImageColumns,
    TextColumns,
    iter_batches,
    local_path,
    read_split,
)

logger = logging.getLogger(__name__)

PREDICT_BATCH = 256
TEXT_PREVIEW_CHARS = 160


def evaluate_cnn(
    model: keras.Model,
    images_silver: DeltaSnapshot,
    label_map: dict[str, int],
    training_metrics: dict[str, Any],
    evaluation: dict[str, Any],
    images: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Figure]]:
    """Metrics, confusion matrix, training curves and a grid of test images for the CNN.

    Returns:
        The metrics report (also logged to the training run) and the figures by file name.
    """
    settings = EvaluationParams.model_validate(evaluation)
    labels = labels_by_index(label_map)
    decode = ImageColumns(int(images["image_size"]))
    y_true, probabilities, first_images = _predict_test_split(
        model, images_silver, decode, keep=settings.grid_images
    )
    keys = read_split(images_silver, ["key", "label_index"], "test")
    _check_alignment(keys["label_index"].to_numpy(), y_true, images_silver)
    report = _report("cnn", y_true, probabilities, labels, keys["key"].to_pylist(), images_silver)
    predicted = probabilities.argmax(axis=1)
    figures = {
        "confusion_matrix.png": confusion_matrix_figure(
            report["confusion_matrix"], labels, "CNN — test split"
        ),
        "training_curves.png": training_curves_figure(training_metrics["history"], "CNN training"),
        "test_images.png": image_grid_figure(
            first_images,
            [labels[index] for index in y_true[: len(first_images)]],
            [labels[index] for index in predicted[: len(first_images)]],
            "CNN — test images (true → predicted)",
        ),
    }
    _log_to_run(training_metrics, report, figures)
    return report, figures


def evaluate_lstm(
    model: keras.Model,
    texts_silver: DeltaSnapshot,
    label_map: dict[str, int],
    training_metrics: dict[str, Any],
    evaluation: dict[str, Any],
    sequence_length: int,
) -> tuple[dict[str, Any], dict[str, Figure], str]:
    """Metrics, confusion matrix, training curves and the most confidently wrong test texts.

    Returns:
        The metrics report, the figures by file name and a markdown table of the mistakes.
    """
    settings = EvaluationParams.model_validate(evaluation)
    labels = labels_by_index(label_map)
    y_true, probabilities, _ = _predict_test_split(
        model, texts_silver, TextColumns(int(sequence_length)), keep=0
    )
    rows = read_split(texts_silver, ["id", "text", "label_index"], "test")
    _check_alignment(rows["label_index"].to_numpy(), y_true, texts_silver)
    report = _report("lstm", y_true, probabilities, labels, rows["id"].to_pylist(), texts_silver)
    figures = {
        "confusion_matrix.png": confusion_matrix_figure(
            report["confusion_matrix"], labels, "LSTM — test split"
        ),
        "training_curves.png": training_curves_figure(training_metrics["history"], "LSTM training"),
    }
    mistakes = confidently_wrong(
        rows["id"].to_pylist(),
        rows["text"].to_pylist(),
        y_true,
        probabilities,
        labels,
        limit=settings.confidently_wrong,
    )
    _log_to_run(training_metrics, report, figures, {"confidently_wrong.md": mistakes})
    return report, figures, mistakes


def confidently_wrong(
    ids: list[str],
    texts: list[str],
    y_true: np.ndarray,
    probabilities: np.ndarray,
    labels: list[str],
    *,
    limit: int,
) -> str:
    """A markdown table of the wrong predictions with the highest probability, worst first."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    lines = [
        f"# Most confidently wrong test texts ({len(wrong)} wrong of {len(y_true)})",
        "",
        "| id | true | predicted | probability | text |",
        "|---|---|---|---|---|",
    ]
    for index in worst:
        text = texts[index].replace("|", "\\|").replace("\n", " ")[:TEXT_PREVIEW_CHARS]
        lines.append(
            f"| {ids[index]} | {labels[y_true[index]]} | {labels[predicted[index]]} | "
            f"{confidence[index]:.3f} | {text} |"
        )
    if not len(worst):
        lines.append("| — | — | — | — | no wrong predictions |")
    return "\n".join(lines) + "\n"


def register_cnn(
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    images_silver: DataFrame,
    images_bronze: DataFrame,
    evaluation: dict[str, Any],
    serving: dict[str, Any],
) -> dict[str, Any]:
    """Register the CNN if it clears the floor; ``champion`` moves only for a real improvement.

    The current champion is scored by Spark on the same test images (their original bytes from
    bronze), through its own registered model, so the comparison is like for like.
    """
    settings = EvaluationParams.model_validate(evaluation)
    test_items = (
        images_silver.filter(F.col("split") == "test")
        .select("key", "label")
        .join(images_bronze.select("key", "path", F.col("content").alias(IMAGE_COLUMN)), "key")
    )
    return _register(
        settings.cnn.registered_name,
        report,
        training_metrics,
        settings,
        ServingParams.model_validate(serving),
        test_items,
        modality="image",
        source="path",
        input_column=IMAGE_COLUMN,
        gate=settings.cnn,
    )


def register_lstm(
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    texts_silver: DataFrame,
    evaluation: dict[str, Any],
    serving: dict[str, Any],
) -> dict[str, Any]:
    """Register the LSTM if it clears the floor; ``champion`` moves only for a real improvement."""
    settings = EvaluationParams.model_validate(evaluation)
    test_items = texts_silver.filter(F.col("split") == "test").select(
        F.col("id").alias("key"), "label", F.col("id").alias("source"), TEXT_COLUMN
    )
    return _register(
        settings.lstm.registered_name,
        report,
        training_metrics,
        settings,
        ServingParams.model_validate(serving),
        test_items,
        modality="text",
        source="source",
        input_column=TEXT_COLUMN,
        gate=settings.lstm,
    )


def champion_metric_on(
    test_items: DataFrame,
    name: str,
    version: str,
    *,
    labels: list[str],
    metric: str,
    cache_dir: str,
    modality: str,
    source: str,
    input_column: str,
) -> float:
    """Score ``test_items`` with a registered version (Spark) and compute ``metric``."""
    model = fetch_version(name, version, cache_dir)
    scored = score(
        test_items, model, modality=modality, key="key", source=source, input_column=input_column
    ).select("key", "predicted_label")
    pairs = (
        test_items.select("key", "label")
        .join(scored, "key")
        .groupBy("label", "predicted_label")
        .count()
        .collect()  # at most classes² rows
    )
    index = {label: position for position, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for row in pairs:
        if row["predicted_label"] not in index:
            raise ValueError(
                f"{name} v{version} predicts {row['predicted_label']!r}, not one of the current "
                f"labels {labels}: it cannot be compared on this test split."
            )
        matrix[index[row["label"]], index[row["predicted_label"]]] += row["count"]
    return float(metrics_from_confusion(matrix, labels)[metric])


def _register(
    name: str,
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    settings: EvaluationParams,
    serving: ServingParams,
    test_items: DataFrame,
    *,
    modality: str,
    source: str,
    input_column: str,
    gate: Any,
) -> dict[str, Any]:
    def champion_value(version: str) -> float:
        return champion_metric_on(
            test_items,
            name,
            version,
            labels=report["labels"],
            metric=settings.metric,
            cache_dir=serving.model_cache_dir,
            modality=modality,
            source=source,
            input_column=input_column,
        )

    return register_and_promote(
        name=name,
        model_uri=training_metrics["mlflow"]["model_uri"],
        run_id=training_metrics["mlflow"]["run_id"],
        metric=settings.metric,
        value=float(report[settings.metric]),
        floor=gate.floor,
        min_delta=gate.min_delta,
        champion_metric=champion_value,
        alias=serving.alias,
    )


def _predict_test_split(
    model: keras.Model, snapshot: DeltaSnapshot, decode: Any, *, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True indices and probabilities over the test split, plus its first ``keep`` inputs."""
    files = [local_path(name) for name in snapshot.files]
    truths, outputs, kept = [], [], []
    for x, y in iter_batches(files, decode, batch_size=PREDICT_BATCH, split="test"):
        truths.append(y)
        outputs.append(np.asarray(model.predict(x, verbose=0)))
        if sum(len(part) for part in kept) < keep:
            kept.append(np.array(x[:keep]))
    if not truths:
        raise ValueError(f"The test split of {snapshot.location} v{snapshot.version} is empty.")
    first = np.concatenate(kept)[:keep] if kept else np.zeros((0,))
    return np.concatenate(truths), np.concatenate(outputs), first


def _check_alignment(read: np.ndarray, decoded: np.ndarray, snapshot: DeltaSnapshot) -> None:
    if len(read) != len(decoded) or not np.array_equal(read, decoded):
        raise RuntimeError(
            f"The test split of {snapshot.location} v{snapshot.version} was read in two different "
            f"orders ({len(read)} and {len(decoded)} rows): the report would mislabel rows."
        )


def _report(
    name: str,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    labels: list[str],
    keys: list[str],
    snapshot: DeltaSnapshot,
) -> dict[str, Any]:
    report = classification_report(y_true, probabilities, labels)
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    report["model"] = name
    report["test_split"] = {
        "table": snapshot.location,
        "delta_version": snapshot.version,
        "rows": len(keys),
        "keys_sha256": digest,
    }
    logger.info(
        "%s on %d test rows: accuracy %.4f, macro-F1 %.4f, loss %.4f",
        name,
        len(keys),
        report["accuracy"],
        report["macro_f1"],
        report["loss"],
    )
    return report


def _log_to_run(
    training_metrics: dict[str, Any],
    report: dict[str, Any],
    figures: dict[str, Figure],
    texts: dict[str, str] | None = None,
) -> None:
    """The report, figures and tables go to the model's training run."""
    import mlflow

    with mlflow.start_run(run_id=training_metrics["mlflow"]["run_id"]):
        mlflow.log_metrics(flat_metrics(report))
        mlflow.log_dict(report, "evaluation/metrics.json")
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"evaluation/{name}")
        for name, text in (texts or {}).items():
            mlflow.log_text(text, f"evaluation/{name}")
        mlflow.set_tag("evaluation.test_keys_sha256", report["test_split"]["keys_sha256"])

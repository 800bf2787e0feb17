"""Classification metrics from labels and predicted probabilities (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

EPSILON = 1e-7  # Keras' clip for the cross-entropy of a probability of 0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape. Received: {y_true.shape} and "
            f"{y_pred.shape}"
        )
    outside = (y_true < 0) | (y_true >= num_classes) | (y_pred < 0) | (y_pred >= num_classes)
    if outside.any():
        raise ValueError(
            f"Class indices must be in [0, {num_classes}). Received: "
            f"{sorted(set(y_true[outside].tolist()) | set(y_pred[outside].tolist()))}"
        )
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def metrics_from_confusion(matrix: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support.

    A class never predicted has precision 0, a class absent from the data recall 0 (and both
    count in the macro average, which is what a quality floor should see).
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(
            f"Expected a {len(labels)}x{len(labels)} confusion matrix for labels {list(labels)}. "
            f"Received: shape {matrix.shape}"
        )
    total = int(matrix.sum())
    if total == 0:
        raise ValueError("The confusion matrix is empty: there is nothing to evaluate.")
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0
    )
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return {
        "accuracy": float(true_positive.sum() / total),
        "macro_f1": float(f1.mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "support": total,
        "per_class": {
            label: {
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(actual[index]),
            }
            for index, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def classification_report(
    y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Every metric of the evaluation report, from true indices and softmax outputs."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), len(labels)):
        raise ValueError(
            f"Expected probabilities of shape ({len(y_true)}, {len(labels)}). Received: "
            f"{probabilities.shape}"
        )
    matrix = confusion_matrix(y_true, probabilities.argmax(axis=1), len(labels))
    report = metrics_from_confusion(matrix, labels)
    picked = np.clip(probabilities[np.arange(len(y_true)), y_true], EPSILON, 1.0)
    report["loss"] = float(-np.log(picked).mean())
    return report


def flat_metrics(report: dict[str, Any], prefix: str = "test_") -> dict[str, float]:
    """The report's numbers as flat MLflow metric names (``test_f1_circle``, …)."""
    flat = {
        f"{prefix}{name}": float(report[name])
        for name in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "loss")
    }
    for label, values in report["per_class"].items():
        for name in ("precision", "recall", "f1"):
            flat[f"{prefix}{name}_{label}"] = float(values[name])
    return flat

"""The evaluation report of one model: metrics, the test split it covers, and its MLflow record."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_lakehouse.evaluation.metrics import classification_report, flat_metrics
from keras_lakehouse.training.loader import DeltaSnapshot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

TEXT_PREVIEW_CHARS = 160


def evaluation_report(
    model_name: str,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    labels: list[str],
    keys: list[str],
    snapshot: DeltaSnapshot,
) -> dict[str, Any]:
    """Every metric of ``classification_report``, with the model and the test split it covers.

    Args:
        model_name: ``cnn`` or ``lstm``.
        y_true: True class indices.
        probabilities: Predicted probabilities, one row per test row.
        labels: The labels by index.
        keys: The test rows' keys (image keys, text ids).
        snapshot: The silver snapshot the test split was read from.

    Returns:
        The report; ``test_split`` names the table, its Delta version, the row count and the
        SHA-256 of the sorted keys (so two reports can be told to cover the same rows).
    """
    report = classification_report(y_true, probabilities, labels)
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    report["model"] = model_name
    report["test_split"] = {
        "table": snapshot.location,
        "delta_version": snapshot.version,
        "rows": len(keys),
        "keys_sha256": digest,
    }
    logger.info(
        "%s on %d test rows: accuracy %.4f, macro-F1 %.4f, loss %.4f",
        model_name,
        len(keys),
        report["accuracy"],
        report["macro_f1"],
        report["loss"],
    )
    return report


def confidently_wrong(
    ids: list[str],
    texts: list[str],
    y_true: np.ndarray,
    probabilities: np.ndarray,
    labels: list[str],
    *,
    limit: int,
) -> str:
    """A markdown table of the wrong predictions with the highest probability, worst first.

    Args:
        ids: The test texts' ids.
        texts: The test texts.
        y_true: True class indices.
        probabilities: Predicted probabilities, one row per text.
        labels: The labels by index.
        limit: The most rows the table lists.

    Returns:
        The markdown page.
    """
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


def log_report(
    run_id: str,
    report: dict[str, Any],
    figures: dict[str, Figure],
    texts: dict[str, str] | None = None,
) -> None:
    """Log the report's metrics, the report, its figures and tables to the model's training run.

    Args:
        run_id: The MLflow run that trained the model.
        report: The output of ``evaluation_report``.
        figures: Figures by file name (under ``evaluation/`` in the run).
        texts: Text artifacts by file name (under ``evaluation/`` in the run).
    """
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(flat_metrics(report))
        mlflow.log_dict(report, "evaluation/metrics.json")
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"evaluation/{name}")
        for name, text in (texts or {}).items():
            mlflow.log_text(text, f"evaluation/{name}")
        mlflow.set_tag("evaluation.test_keys_sha256", report["test_split"]["keys_sha256"])

"""Evaluation nodes: test-split metrics and pictures per model, then the registry's quality gate.

The metrics come from the trained Keras model over the pinned silver snapshot (the loader's test
split, in file order); they go to a JSON report, to PNGs and to the model's training run in MLflow.
The registry node registers the logged raw-input model, and moves ``champion`` only when the new
version beats the current champion, scored by Spark on the same test items, by ``min_delta``.

Keras and matplotlib load when a node runs, not with this module (Kedro imports every pipeline's
nodes at each command). Kedro resolves the node functions' annotations at run time, to build the
typed ``params:`` inputs: the Keras model and the figures are annotated ``Any``.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.evaluation.champion import register_against_champion
from keras_lakehouse.evaluation.plots import (
    confusion_matrix_figure,
    image_grid_figure,
    training_curves_figure,
)
from keras_lakehouse.evaluation.predictions import check_alignment, predict_test_split
from keras_lakehouse.evaluation.report import confidently_wrong, evaluation_report, log_report
from keras_lakehouse.params import EvaluationParams, ServingParams
from keras_lakehouse.serving.mlflow_model import IMAGE_COLUMN, TEXT_COLUMN, labels_by_index
from keras_lakehouse.training.loader import DeltaSnapshot, ImageColumns, TextColumns, read_split


def evaluate_cnn(
    model: Any,
    images_silver: DeltaSnapshot,
    label_map: dict[str, int],
    training_metrics: dict[str, Any],
    evaluation: EvaluationParams,
    image_size: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics, confusion matrix, training curves and a grid of test images for the CNN.

    Args:
        model: The trained CNN (a ``keras.Model``).
        images_silver: The silver images table, pinned at the version it was trained on.
        label_map: Label → index, fitted in preprocessing.
        training_metrics: The training node's metrics (history, MLflow run).
        evaluation: The ``evaluation`` parameters.
        image_size: The ``preprocessing.images.image_size`` parameter.

    Returns:
        The metrics report (also logged to the training run) and the figures
        (``matplotlib.figure.Figure``) by file name.
    """
    labels = labels_by_index(label_map)
    y_true, probabilities, first_images = predict_test_split(
        model, images_silver, ImageColumns(image_size), keep=evaluation.grid_images
    )
    keys = read_split(images_silver, ["key", "label_index"], "test")
    check_alignment(keys["label_index"].to_numpy(), y_true, images_silver)
    report = evaluation_report(
        "cnn", y_true, probabilities, labels, keys["key"].to_pylist(), images_silver
    )
    shown = len(first_images)
    predicted = probabilities.argmax(axis=1)[:shown]
    figures = {
        "confusion_matrix.png": confusion_matrix_figure(
            report["confusion_matrix"], labels, "CNN — test split"
        ),
        "training_curves.png": training_curves_figure(training_metrics["history"], "CNN training"),
        "test_images.png": image_grid_figure(
            first_images,
            [labels[index] for index in y_true[:shown]],
            [labels[index] for index in predicted],
            "CNN — test images (true → predicted)",
        ),
    }
    log_report(training_metrics["mlflow"]["run_id"], report, figures)
    return report, figures


def evaluate_lstm(
    model: Any,
    texts_silver: DeltaSnapshot,
    label_map: dict[str, int],
    training_metrics: dict[str, Any],
    evaluation: EvaluationParams,
    sequence_length: int,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Metrics, confusion matrix, training curves and the most confidently wrong test texts.

    Args:
        model: The trained LSTM (a ``keras.Model``).
        texts_silver: The silver texts table, pinned at the version it was trained on.
        label_map: Label → index, fitted in preprocessing.
        training_metrics: The training node's metrics (history, MLflow run).
        evaluation: The ``evaluation`` parameters.
        sequence_length: The ``preprocessing.texts.sequence_length`` parameter.

    Returns:
        The metrics report, the figures (``matplotlib.figure.Figure``) by file name and a
        markdown table of the mistakes.
    """
    labels = labels_by_index(label_map)
    y_true, probabilities, _ = predict_test_split(
        model, texts_silver, TextColumns(sequence_length), keep=0
    )
    rows = read_split(texts_silver, ["id", "text", "label_index"], "test")
    check_alignment(rows["label_index"].to_numpy(), y_true, texts_silver)
    ids = rows["id"].to_pylist()
    report = evaluation_report("lstm", y_true, probabilities, labels, ids, texts_silver)
    figures = {
        "confusion_matrix.png": confusion_matrix_figure(
            report["confusion_matrix"], labels, "LSTM — test split"
        ),
        "training_curves.png": training_curves_figure(training_metrics["history"], "LSTM training"),
    }
    mistakes = confidently_wrong(
        ids,
        rows["text"].to_pylist(),
        y_true,
        probabilities,
        labels,
        limit=evaluation.confidently_wrong,
    )
    run_id = training_metrics["mlflow"]["run_id"]
    log_report(run_id, report, figures, {"confidently_wrong.md": mistakes})
    return report, figures, mistakes


def register_cnn(
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    images_silver: DataFrame,
    images_bronze: DataFrame,
    evaluation: EvaluationParams,
    serving: ServingParams,
) -> dict[str, Any]:
    """Register the CNN if it clears the floor; ``champion`` moves only for a real improvement.

    The current champion is scored by Spark on the same test images (their original bytes from
    bronze), through its own registered model, so the comparison is like for like.

    Args:
        report: The output of ``evaluate_cnn``.
        training_metrics: The training node's metrics (the logged model and its run).
        images_silver: The silver images table (its test split's keys and labels).
        images_bronze: The bronze images table (the test images' original bytes).
        evaluation: The ``evaluation`` parameters.
        serving: The ``serving`` parameters.

    Returns:
        What the registry gate decided.
    """
    test_items = (
        images_silver.filter(F.col("split") == "test")
        .select("key", "label")
        .join(images_bronze.select("key", "path", F.col("content").alias(IMAGE_COLUMN)), "key")
    )
    return register_against_champion(
        report,
        training_metrics,
        test_items,
        evaluation=evaluation,
        gate=evaluation.cnn,
        serving=serving,
        modality="image",
        source="path",
        input_column=IMAGE_COLUMN,
    )


def register_lstm(
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    texts_silver: DataFrame,
    evaluation: EvaluationParams,
    serving: ServingParams,
) -> dict[str, Any]:
    """Register the LSTM if it clears the floor; ``champion`` moves only for a real improvement.

    Args:
        report: The output of ``evaluate_lstm``.
        training_metrics: The training node's metrics (the logged model and its run).
        texts_silver: The silver texts table (its test split's ids, texts and labels).
        evaluation: The ``evaluation`` parameters.
        serving: The ``serving`` parameters.

    Returns:
        What the registry gate decided.
    """
    test_items = texts_silver.filter(F.col("split") == "test").select(
        F.col("id").alias("key"), "label", F.col("id").alias("source"), TEXT_COLUMN
    )
    return register_against_champion(
        report,
        training_metrics,
        test_items,
        evaluation=evaluation,
        gate=evaluation.lstm,
        serving=serving,
        modality="text",
        source="source",
        input_column=TEXT_COLUMN,
    )

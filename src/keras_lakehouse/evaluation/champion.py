"""The registry's comparison: the current champion, scored by Spark on the same test items.

A new version takes the serving alias only when it beats the champion on this test split by
``min_delta`` (``serving.registry.register_and_promote``); the champion is scored through its
own registered model, so the comparison is like for like.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from keras_lakehouse.evaluation.metrics import metrics_from_confusion
from keras_lakehouse.params import EvaluationParams, GateParams, ServingParams
from keras_lakehouse.serving.registry import register_and_promote
from keras_lakehouse.serving.scoring import fetch_version, score


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
    """Score ``test_items`` with a registered version (Spark) and compute ``metric``.

    Args:
        test_items: The test rows: ``key``, ``label``, ``source`` and the model's input column.
        name: The registered model.
        version: Its version to score with.
        labels: The current labels, by index.
        metric: A metric of ``metrics_from_confusion`` (``macro_f1``, ``accuracy``).
        cache_dir: Where the driver fetches the version's files for the executors.
        modality: ``image`` or ``text``.
        source: The column naming each row's origin.
        input_column: The model's input column.

    Returns:
        The version's ``metric`` on ``test_items``.

    Raises:
        ValueError: When the version predicts a label that is not one of ``labels``.
    """
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


def register_against_champion(
    report: dict[str, Any],
    training_metrics: dict[str, Any],
    test_items: DataFrame,
    *,
    evaluation: EvaluationParams,
    gate: GateParams,
    serving: ServingParams,
    modality: str,
    source: str,
    input_column: str,
) -> dict[str, Any]:
    """Register the logged model behind ``gate``; the alias moves only if it beats the champion.

    Args:
        report: The model's evaluation report.
        training_metrics: The training node's metrics (``mlflow.model_uri``, ``mlflow.run_id``).
        test_items: The test rows, for scoring the current champion.
        evaluation: The ``evaluation`` parameters (the metric).
        gate: The model's gate (registered name, floor, ``min_delta``).
        serving: The ``serving`` parameters (alias, model cache).
        modality: ``image`` or ``text``.
        source: The column of ``test_items`` naming each row's origin.
        input_column: The model's input column in ``test_items``.

    Returns:
        What ``register_and_promote`` decided.
    """

    def champion_value(version: str) -> float:
        return champion_metric_on(
            test_items,
            gate.registered_name,
            version,
            labels=report["labels"],
            metric=evaluation.metric,
            cache_dir=serving.model_cache_dir,
            modality=modality,
            source=source,
            input_column=input_column,
        )

    return register_and_promote(
        name=gate.registered_name,
        model_uri=training_metrics["mlflow"]["model_uri"],
        run_id=training_metrics["mlflow"]["run_id"],
        metric=evaluation.metric,
        value=float(report[evaluation.metric]),
        floor=gate.floor,
        min_delta=gate.min_delta,
        champion_metric=champion_value,
        alias=serving.alias,
    )

"""Drift, quarantine rate and live quality, judged against ``parameters_monitoring.yml``.

Every measurement becomes one ``monitoring_drift`` row with a status: ``ok``, ``warn`` (logged and
reported), ``fail`` (the run fails after the report is written — the data-quality gate's severity
model) or ``not_judged`` (too few rows, or no training profile to compare with; reported, never
failing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.monitoring.histograms import Histogram, coarsen, js_distance
from keras_lakehouse.params import Limits, MonitoringParams

logger = logging.getLogger(__name__)

OK, WARN, FAIL, NOT_JUDGED = "ok", "warn", "fail", "not_judged"
JS_DISTANCE, RATE, ACCURACY, MACRO_F1 = "js_distance", "rate", "accuracy", "macro_f1"
QUARANTINE_RATE = "quarantine_rate"


def drift_rows(
    reference: Mapping[str, Histogram] | None,
    current: Mapping[str, Histogram],
    settings: MonitoringParams,
) -> list[dict[str, Any]]:
    """One row per feature of ``current``: its JS distance to ``reference`` and a status.

    Args:
        reference: The training profile's histograms; ``None`` when the model version has none
            (logged before monitoring existed): every feature is then ``not_judged``.
        current: This run's histograms (counted on the reference's edges).
        settings: The ``monitoring`` parameters.
    """
    rows = []
    for name, histogram in current.items():
        limits = settings.features.get(name, settings.drift)
        row = {
            "metric": name,
            "statistic": JS_DISTANCE,
            "value": None,
            "warn": limits.warn,
            "fail": limits.fail,
            "status": NOT_JUDGED,
            "rows_reference": None,
            "rows_current": histogram.rows,
            "labelled_rows": None,
        }
        known = (reference or {}).get(name)
        if known is not None:
            row["rows_reference"] = known.rows
        if known is None or known.rows == 0 or histogram.rows < settings.min_rows:
            rows.append(row)
            continue
        before, now = coarsen(known, histogram, min_rows_per_bin=settings.min_rows_per_bin)
        value = js_distance(before, now)
        rows.append(row | {"value": value, "status": judge_above(value, limits)})
    return rows


def quarantine_row(counts: Mapping[str, Any], settings: MonitoringParams) -> dict[str, Any]:
    """The share of this run's records to score that the checks rejected."""
    raw = int(counts.get("raw") or 0)
    rate = int(counts.get("quarantine") or 0) / raw if raw else None
    limits = settings.quarantine_rate
    return {
        "metric": QUARANTINE_RATE,
        "statistic": RATE,
        "value": rate,
        "warn": limits.warn,
        "fail": limits.fail,
        "status": NOT_JUDGED if rate is None else judge_above(rate, limits),
        "rows_reference": None,
        "rows_current": raw,
        "labelled_rows": None,
    }


def quality_rows(
    predictions: DataFrame, labels: DataFrame | None, settings: MonitoringParams
) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 per model version over every prediction that has a true label.

    Labels arrive later than predictions: each scoring run measures every version over all the
    labelled predictions so far, so the rows over runs form the quality's time series.

    Args:
        predictions: The ``predictions`` table (every run's rows).
        labels: ``kind`` (``image``/``text``), ``key`` (an image's file name or SHA-256 key, a
            text's id) and ``label``; ``None`` when no labels have arrived. A file name matches
            the latest prediction of each path of that name.
        settings: The ``monitoring`` parameters.

    Returns:
        Two rows (accuracy, macro-F1) per model version with labelled predictions.
    """
    if labels is None:
        return []
    file_name = F.element_at(F.split(F.col("source"), "/"), -1)
    truth = labels.select(
        F.col("kind").alias("_kind"), F.col("key").alias("_key"), F.col("label").alias("_label")
    ).dropDuplicates(["_kind", "_key"])
    # A label names what is at a path now: of the predictions of one path (a file replaced by
    # another of the same name), only the latest counts.
    latest = Window.partitionBy("modality", "model_name", "model_version", "source").orderBy(
        F.desc("scored_at")
    )
    current = predictions.withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1")
    joined = current.join(
        F.broadcast(truth),
        (F.col("modality") == F.col("_kind"))
        & ((F.col("key") == F.col("_key")) | (file_name == F.col("_key"))),
    )
    per_class = (
        joined.groupBy("modality", "model_name", "model_version", "_label")
        .agg(
            F.count("*").alias("support"),
            F.sum((F.col("predicted_label") == F.col("_label")).cast("int")).alias("hits"),
        )
        .join(
            joined.groupBy("modality", "model_name", "model_version", "predicted_label")
            .count()
            .withColumnRenamed("count", "predicted")
            .withColumnRenamed("predicted_label", "_label"),
            ["modality", "model_name", "model_version", "_label"],
            "full",
        )
        .fillna(0, ["support", "hits", "predicted"])
        .collect()  # versions x classes rows
    )
    versions: dict[tuple[str, str, str], list[Any]] = {}
    for row in per_class:
        versions.setdefault((row["modality"], row["model_name"], row["model_version"]), []).append(
            row
        )
    rows = []
    for (modality, name, version), classes in sorted(versions.items()):
        labelled = sum(int(row["support"]) for row in classes)
        hits = sum(int(row["hits"]) for row in classes)
        scores = [
            _f1(int(row["hits"]), int(row["support"]), int(row["predicted"]))
            for row in classes  # every class true or predicted, as scikit-learn's macro-F1
        ]
        values = {ACCURACY: hits / labelled, MACRO_F1: sum(scores) / len(scores)}
        for statistic, value in values.items():
            limits = getattr(settings.quality, statistic)
            judged = labelled >= settings.min_labelled_rows
            rows.append(
                {
                    "modality": modality,
                    "model_name": name,
                    "model_version": version,
                    "metric": statistic,
                    "statistic": statistic,
                    "value": value,
                    "warn": limits.warn,
                    "fail": limits.fail,
                    "status": judge_below(value, limits) if judged else NOT_JUDGED,
                    "rows_reference": None,
                    "rows_current": None,
                    "labelled_rows": labelled,
                }
            )
    return rows


def verdict(run_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The count of each status and the rows that warn or fail, named."""

    def named(status: str) -> list[str]:
        return [
            f"{row['model_name']} v{row['model_version']} {_measure(row)} "
            f"{row['value']:.3f} (threshold {row[status]})"
            for row in rows
            if row["status"] == status
        ]

    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"run_id": run_id, "statuses": statuses, "warned": named(WARN), "failed": named(FAIL)}


def _measure(row: Mapping[str, Any]) -> str:
    """``brightness_r js_distance``, ``quarantine_rate rate``, ``accuracy`` (not twice)."""
    same = row["metric"] == row["statistic"]
    return row["metric"] if same else f"{row['metric']} {row['statistic']}"


def judge_above(value: float, limits: Limits) -> str:
    """``fail`` / ``warn`` when ``value`` reaches a limit (larger is worse: drift, rates)."""
    if value >= limits.fail:
        return FAIL
    return WARN if value >= limits.warn else OK


def judge_below(value: float, limits: Limits) -> str:
    """``fail`` / ``warn`` when ``value`` is under a limit (smaller is worse: accuracy)."""
    if value < limits.fail:
        return FAIL
    return WARN if value < limits.warn else OK


def _f1(hits: int, support: int, predicted: int) -> float:
    if hits == 0:
        return 0.0
    precision, recall = hits / predicted, hits / support
    return 2 * precision * recall / (precision + recall)

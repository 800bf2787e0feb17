"""The two monitoring tables' schemas, and the MLflow run that holds each scoring run's report.

``monitoring_profiles``: one row per (run, model version, scope, feature, bin) — the training
profile's rows are keyed by the training run, so each scoring run rewrites the same rows.
``monitoring_drift``: one row per (run, model version, metric, statistic), with its thresholds
and status; ``run_id`` is the MLflow run that holds the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import types as T  # noqa: N812

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STRING, _DOUBLE, _LONG = T.StringType(), T.DoubleType(), T.LongType()
PROFILE_SCHEMA = T.StructType(
    [
        T.StructField("run_id", _STRING, nullable=False),
        T.StructField("computed_at", T.TimestampType(), nullable=False),
        T.StructField("scope", _STRING, nullable=False),
        T.StructField("modality", _STRING, nullable=False),
        T.StructField("model_name", _STRING, nullable=False),
        T.StructField("model_version", _STRING, nullable=False),
        T.StructField("feature", _STRING, nullable=False),
        T.StructField("kind", _STRING, nullable=False),
        T.StructField("bin", _STRING, nullable=False),
        T.StructField("lower", _DOUBLE),
        T.StructField("upper", _DOUBLE),
        T.StructField("count", _LONG, nullable=False),
    ]
)
DRIFT_SCHEMA = T.StructType(
    [
        T.StructField("run_id", _STRING, nullable=False),
        T.StructField("computed_at", T.TimestampType(), nullable=False),
        T.StructField("modality", _STRING, nullable=False),
        T.StructField("model_name", _STRING, nullable=False),
        T.StructField("model_version", _STRING, nullable=False),
        T.StructField("metric", _STRING, nullable=False),
        T.StructField("statistic", _STRING, nullable=False),
        T.StructField("value", _DOUBLE),
        T.StructField("warn", _DOUBLE),
        T.StructField("fail", _DOUBLE),
        T.StructField("status", _STRING, nullable=False),
        T.StructField("rows_reference", _LONG),
        T.StructField("rows_current", _LONG),
        T.StructField("labelled_rows", _LONG),
    ]
)
REPORT_FOLDER = "monitoring"


def with_run(
    rows: Sequence[Mapping[str, Any]], run_id: str, computed_at: datetime, schema: T.StructType
) -> list[tuple[Any, ...]]:
    """``rows`` as tuples in ``schema`` order; ``run_id`` where a row has none, ``computed_at``."""
    stamped = [{"run_id": run_id, **row, "computed_at": computed_at} for row in rows]
    return [tuple(_cast(row.get(field.name), field) for field in schema.fields) for row in stamped]


def log_report(figures: Mapping[str, Figure], page: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """A ``monitoring`` MLflow run with the figures, the HTML page and each measured value.

    Returns:
        The run's id (the ``run_id`` of this scoring run's monitoring rows).
    """
    import mlflow

    versions = sorted({f"{row['model_name']} v{row['model_version']}" for row in rows})
    with mlflow.start_run(run_name="monitoring", tags={"monitoring_models": ", ".join(versions)}):
        run = mlflow.active_run()
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"{REPORT_FOLDER}/{name}")
        mlflow.log_text(page, f"{REPORT_FOLDER}/report.html")
        mlflow.log_metrics(
            {_metric_key(row): float(row["value"]) for row in rows if row["value"] is not None}
        )
        return run.info.run_id


def _metric_key(row: Mapping[str, Any]) -> str:
    """An MLflow metric name (letters, digits, ``_ - . /`` and spaces only)."""
    model = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(row["model_name"]))
    same = row["metric"] == row["statistic"]  # accuracy, macro_f1: not twice
    measure = row["metric"] if same else f"{row['metric']}_{row['statistic']}"
    return f"{row['modality']}/{model}/v{row['model_version']}/{measure}"


def _cast(value: Any, field: T.StructField) -> Any:
    if value is None:
        return None
    if isinstance(field.dataType, T.DoubleType):
        return float(value)
    if isinstance(field.dataType, T.LongType):
        return int(value)
    if isinstance(field.dataType, T.StringType):
        return str(value)
    return value

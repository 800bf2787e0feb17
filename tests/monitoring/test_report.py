"""The monitoring report: its pictures, its page and the MLflow run that holds them."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow

from keras_lakehouse.monitoring.histograms import CATEGORICAL, NUMERIC, Histogram, bin_names
from keras_lakehouse.monitoring.report import drift_figure, quality_figure, report_html
from keras_lakehouse.monitoring.tables import DRIFT_SCHEMA, log_report, with_run

EDGES = (1.0, 2.0)
ROWS = [
    {"metric": "brightness_r", "statistic": "js_distance", "value": 0.62, "status": "fail"},
    {"metric": "format", "statistic": "js_distance", "value": None, "status": "not_judged"},
    {"metric": "quarantine_rate", "statistic": "rate", "value": 0.04, "status": "ok"},
    {"metric": "accuracy", "statistic": "accuracy", "value": 0.9, "status": "ok"},
]
ROWS = [
    row
    | {"warn": 0.35, "fail": 0.5, "modality": "image", "model_name": "cat.sch.cnn"}
    | {"model_version": "3"}
    for row in ROWS
]


def histograms(counts: list[int]) -> dict[str, Histogram]:
    numeric = Histogram(
        kind=NUMERIC, counts=dict(zip(bin_names(EDGES), counts, strict=True)), edges=EDGES
    )
    return {"brightness_r": numeric, "format": Histogram(kind=CATEGORICAL, counts={"PNG": 3})}


def test_the_report_draws_each_feature_and_logs_its_values_to_a_monitoring_run() -> None:
    figure = drift_figure("cnn v3", histograms([5, 5, 5]), histograms([9, 0, 0]), ROWS)
    assert len(figure.axes) == 3  # two features and the drift bars
    assert figure.axes[0].get_title() == "brightness_r: 0.620 (fail)"
    history = [
        {"computed_at": datetime(2026, 12, day, tzinfo=UTC), "value": 0.9 - day / 100}
        | {"model_name": "cnn", "model_version": "3", "statistic": "accuracy"}
        for day in (1, 2)
    ]
    figures = {"image_drift.png": figure, "quality.png": quality_figure(history)}
    page = report_html("monitoring", figures, ROWS)
    assert page.count("data:image/png;base64,") == 2
    assert "brightness_r" in page
    assert "0.620 (fail)" in page

    mlflow.set_experiment("monitoring-tests")
    run_id = log_report(figures, page, ROWS)
    run = mlflow.MlflowClient().get_run(run_id)
    # Model names with dots (Unity Catalog) become valid metric names; a statistic named like
    # its metric is not repeated; a value not measured is not logged.
    assert run.data.metrics == {
        "image/cat_sch_cnn/v3/brightness_r_js_distance": 0.62,
        "image/cat_sch_cnn/v3/quarantine_rate_rate": 0.04,
        "image/cat_sch_cnn/v3/accuracy": 0.9,
    }
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(run_id, "monitoring")}
    assert artifacts == {
        "monitoring/image_drift.png",
        "monitoring/quality.png",
        "monitoring/report.html",
    }


def test_table_rows_follow_the_schema_and_carry_the_run() -> None:
    at = datetime(2026, 12, 2, tzinfo=UTC)
    (row,) = with_run([ROWS[0] | {"rows_current": 24.0}], "run-9", at, DRIFT_SCHEMA)
    values = dict(zip(DRIFT_SCHEMA.fieldNames(), row, strict=True))
    assert (values["run_id"], values["computed_at"], values["rows_current"]) == ("run-9", at, 24)
    assert values["labelled_rows"] is None

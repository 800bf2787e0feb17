"""Judging drift, quarantine rate and live quality against the monitoring thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, f1_score

from keras_lakehouse.monitoring.drift import (
    FAIL,
    NOT_JUDGED,
    OK,
    WARN,
    drift_rows,
    quality_rows,
    quarantine_row,
)
from keras_lakehouse.monitoring.histograms import CATEGORICAL, Histogram
from keras_lakehouse.params import MonitoringParams
from keras_lakehouse.pipelines.inference.monitoring_nodes import check_monitoring

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def settings(**changes) -> MonitoringParams:
    text = (PROJECT_ROOT / "conf/base/parameters_monitoring.yml").read_text()
    base = yaml.safe_load(text)["monitoring"]
    return MonitoringParams.model_validate(base | changes)


def counts(**values: int) -> Histogram:
    return Histogram(kind=CATEGORICAL, counts=values)


def test_each_feature_gets_the_status_of_its_distance() -> None:
    reference = {name: counts(a=50, b=50) for name in ("same", "half", "moved")}
    current = {
        "same": counts(a=15, b=15),
        "half": counts(a=27, b=3),  # JS distance ~0.42: between warn 0.35 and fail 0.5
        "moved": counts(c=30),  # disjoint: 1
    }
    rows = {row["metric"]: row for row in drift_rows(reference, current, settings())}
    assert {name: row["status"] for name, row in rows.items()} == {
        "same": OK,
        "half": WARN,
        "moved": FAIL,
    }
    assert rows["moved"]["value"] == pytest.approx(1.0)
    assert (rows["same"]["rows_reference"], rows["same"]["rows_current"]) == (100, 30)


def test_a_feature_threshold_overrides_the_default() -> None:
    strict = settings(features={"half": {"warn": 0.1, "fail": 0.3}})
    (row,) = drift_rows({"half": counts(a=50, b=50)}, {"half": counts(a=27, b=3)}, strict)
    assert (row["status"], row["fail"]) == (FAIL, 0.3)


def test_too_few_rows_or_no_training_profile_is_reported_not_judged() -> None:
    reference = {"f": counts(a=50, b=50)}
    (few,) = drift_rows(reference, {"f": counts(c=5)}, settings())  # fewer than min_rows
    assert (few["status"], few["value"]) == (NOT_JUDGED, None)
    (unknown,) = drift_rows(None, {"f": counts(a=30)}, settings())
    assert (unknown["status"], unknown["rows_reference"]) == (NOT_JUDGED, None)


def test_the_quarantine_rate_is_judged_like_drift() -> None:
    assert quarantine_row({"raw": 20, "quarantine": 1}, settings())["status"] == OK
    assert quarantine_row({"raw": 20, "quarantine": 4}, settings())["status"] == WARN
    row = quarantine_row({"raw": 20, "quarantine": 12}, settings())
    assert (row["status"], row["value"]) == (FAIL, 0.6)
    assert quarantine_row({"raw": 0}, settings())["status"] == NOT_JUDGED


def test_thresholds_in_the_wrong_order_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="expected warn <= fail"):
        settings(drift={"warn": 0.6, "fail": 0.5})
    with pytest.raises(ValidationError, match="expected fail <= warn"):
        settings(
            quality={"accuracy": {"warn": 0.5, "fail": 0.8}, "macro_f1": {"warn": 1, "fail": 0}}
        )


PREDICTIONS = (
    "key string, source string, modality string, predicted_label string, "
    "model_name string, model_version string, scored_at timestamp"
)


def test_live_quality_matches_scikit_learn_and_a_file_name_takes_the_latest_prediction(
    spark,
) -> None:
    now = datetime(2026, 12, 1, 12)
    truth = ["a", "a", "b", "b", "c", "c"] * 4
    guess = ["a", "b", "b", "b", "c", "a"] * 4
    rows = [
        (f"k{i}", f"file:/in/img_{i}.png", "image", g, "cnn", "2", now) for i, g in enumerate(guess)
    ]
    # An earlier file of the same name, scored before and replaced since: not the one labelled.
    rows.append(("old", "file:/in/img_0.png", "image", "c", "cnn", "2", now - timedelta(days=1)))
    rows.append(("t1", "texts.csv:2", "text", "x", "lstm", "1", now))  # no label: not counted
    predictions = spark.createDataFrame(rows, PREDICTIONS)
    labels = spark.createDataFrame(
        [("image", f"img_{i}.png", label) for i, label in enumerate(truth)],
        "kind string, key string, label string",
    )
    found = {row["statistic"]: row for row in quality_rows(predictions, labels, settings())}
    assert found["accuracy"]["value"] == pytest.approx(accuracy_score(truth, guess))
    assert found["macro_f1"]["value"] == pytest.approx(f1_score(truth, guess, average="macro"))
    assert found["accuracy"]["labelled_rows"] == 24
    assert found["accuracy"]["status"] == WARN  # 0.667: under warn 0.8, above fail 0.5
    assert quality_rows(predictions, None, settings()) == []


def test_a_failing_verdict_fails_the_run_naming_each_failure() -> None:
    check_monitoring({"run_id": "r", "failed": []})
    with pytest.raises(RuntimeError, match=r"Monitoring failed.*cnn v2 brightness_r"):
        check_monitoring({"run_id": "r", "failed": ["cnn v2 brightness_r js_distance 0.7"]})


def test_labels_without_a_required_column_are_refused_by_name(spark) -> None:
    import pandas as pd

    from keras_lakehouse.pipelines.inference.monitoring_nodes import measure_live_quality

    predictions = spark.createDataFrame([], PREDICTIONS)
    labels = pd.DataFrame({"kind": ["image"], "file": ["a.png"], "label": ["circle"]})
    with pytest.raises(ValueError, match=r"monitoring_labels.*missing \['key'\]"):
        measure_live_quality(predictions, labels, settings())
    assert measure_live_quality(predictions, None, settings()) == []

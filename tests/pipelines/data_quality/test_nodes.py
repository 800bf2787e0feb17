"""The Great Expectations gate on tiny literal tables."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession

from keras_lakehouse.params import SuiteParams
from keras_lakehouse.pipelines.data_quality.nodes import (
    enforce_quality_gate,
    record_quality_verdict,
    validate_table,
)
from keras_lakehouse.quality.suites import _raised


def suite(
    *expectations: dict,
    class_balance: dict | None = None,
    max_rejected_fraction: float | None = None,
) -> SuiteParams:
    return SuiteParams.model_validate(
        {
            "table": "toy",
            "expectations": list(expectations),
            "class_balance": class_balance,
            "max_rejected_fraction": max_rejected_fraction,
        }
    )


NOT_NULL_KEY = {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "key"}}
UNIQUE_KEY = {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "key"}}
LABEL_IN_SET = {
    "expectation": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "label", "value_set": ["a", "b"]},
}


@pytest.fixture(scope="module")
def good(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [(f"k{i}", "ab"[i % 2], i) for i in range(20)], "key string, label string, width int"
    )


@pytest.fixture(scope="module")
def bad(spark: SparkSession) -> DataFrame:
    rows = [(f"k{i}", "ab"[i % 2], i) for i in range(18)] + [("k0", "zzz", 5), (None, "a", 6)]
    return spark.createDataFrame(rows, "key string, label string, width int")


def statuses(report: dict) -> list[str]:
    return [check["status"] for check in report["checks"]]


def gate(report: dict) -> dict:
    """The two gate nodes in a row: the verdict is recorded, then enforced."""
    verdict = record_quality_verdict(report)
    enforce_quality_gate(verdict)
    return verdict


def test_a_failed_verdict_is_recorded_before_the_gate_raises(bad: DataFrame) -> None:
    report, _ = validate_table(bad, suite(UNIQUE_KEY))
    verdict = record_quality_verdict(report)  # saved by Kedro before the gate node runs
    assert (verdict["passed"], len(verdict["failures"])) == (False, 1)
    with pytest.raises(ValueError, match="Data quality gate failed for toy at version None"):
        enforce_quality_gate(verdict)


def test_clean_table_passes_every_check_and_the_gate(good: DataFrame) -> None:
    report, page = validate_table(
        good,
        suite(
            NOT_NULL_KEY,
            UNIQUE_KEY,
            LABEL_IN_SET,
            class_balance={"column": "label", "min_fraction": 0.2},
        ),
    )
    assert statuses(report) == ["passed"] * 4
    assert report["success"] is True
    assert report["class_distribution"] == {"a": 0.5, "b": 0.5}
    assert gate(report) == {
        "table": "toy",
        "delta_version": None,  # a literal DataFrame, not a Delta load
        "passed": True,
        "failures": [],
        "warnings": [],
    }
    assert "PASSED" in page


def test_violations_fail_the_gate_naming_each_expectation_and_observation(bad: DataFrame) -> None:
    report, page = validate_table(bad, suite(NOT_NULL_KEY, UNIQUE_KEY, LABEL_IN_SET))
    assert statuses(report) == ["failed"] * 3
    assert report["success"] is False
    with pytest.raises(ValueError, match="Data quality gate failed for toy") as raised:
        gate(report)
    message = str(raised.value)
    # The table-level check gates; the per-row ones (quarantined at ingestion) are reported.
    assert "expect_column_values_to_be_unique(column=key)" in message
    assert "not_be_null" not in message
    not_null = report["checks"][0]
    assert not_null["observed"].startswith("1 unexpected of 20")
    assert "e.g. ['zzz']" in report["checks"][2]["observed"]
    assert "FAILED" in page
    assert "expect_column_values_to_be_in_set" in page


def test_warn_severity_only_reports(bad: DataFrame) -> None:
    report, _ = validate_table(bad, suite({**LABEL_IN_SET, "severity": "warn"}))
    assert statuses(report) == ["failed"]
    assert report["success"] is True
    assert gate(report)["warnings"] == ["expect_column_values_to_be_in_set"]


def test_expectation_on_a_missing_column_is_not_evaluated_and_fails_even_as_warn(
    good: DataFrame,
) -> None:
    missing = {
        "expectation": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "nope"},
        "severity": "warn",
    }
    report, _ = validate_table(good, suite(NOT_NULL_KEY, missing))
    assert statuses(report) == ["passed", "not_evaluated"]
    assert "nope" in str(report["checks"][1]["observed"])
    with pytest.raises(ValueError, match=r"column=nope\) \[warn\]: not evaluated"):
        gate(report)


def test_class_balance_floor_fails_a_rare_class(spark: SparkSession) -> None:
    rows = [(f"k{i}", "a") for i in range(19)] + [("k19", "b")]
    frame = spark.createDataFrame(rows, "key string, label string")
    report, _ = validate_table(
        frame, suite(NOT_NULL_KEY, class_balance={"column": "label", "min_fraction": 0.1})
    )
    assert statuses(report) == ["passed", "failed"]
    assert report["class_distribution"] == {"a": 0.95, "b": 0.05}
    with pytest.raises(ValueError, match=r"class_balance\(column=label, min_fraction=0.1\)"):
        gate(report)


def test_unknown_expectation_name_is_a_clear_error(good: DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"expect_column_to_be_lovely.*not valid Great Expectations"
    ):
        validate_table(good, suite({"expectation": "expect_column_to_be_lovely", "kwargs": {}}))


def test_exception_info_is_read_in_both_shapes() -> None:
    flat = {"raised_exception": True, "exception_message": "boom"}
    keyed = {"MetricConfigurationID(x)": {"raised_exception": True, "exception_message": "gone"}}
    assert _raised(flat) == "boom"
    assert _raised(keyed) == "gone"
    assert _raised({"raised_exception": False, "exception_message": None}) is None


def test_a_per_row_failure_is_reported_but_does_not_stop_the_run(bad: DataFrame) -> None:
    """A poisoned row already in bronze (ingestion now quarantines such rows) cannot block every
    later run: per-row checks report, table-level checks gate."""
    report, _ = validate_table(bad, suite(LABEL_IN_SET))
    assert statuses(report) == ["failed"]
    assert report["success"] is True
    assert gate(report)["passed"] is True


def test_too_many_rejected_records_fail_the_gate(good: DataFrame) -> None:
    limited = suite(NOT_NULL_KEY, max_rejected_fraction=0.25)
    fine, _ = validate_table(good, limited, {"raw": 100, "quarantine": 25})
    assert gate(fine)["passed"] is True
    broken, _ = validate_table(good, limited, {"raw": 100, "quarantine": 26})
    with pytest.raises(ValueError, match=r"rejected_fraction\(max_fraction=0.25\).*0.2600 of 100"):
        gate(broken)


# ---- a version already validated is not validated again ------------------------------------
NOTHING_NEW = {"raw": 0, "bronze": 0, "quarantine": 0, "quarantine_by_reason": {}}


@pytest.fixture
def at_version_3(spark: SparkSession, good: DataFrame) -> DataFrame:
    """A table as a DeltaTableDataset load returns it: read at Delta version 3."""
    from keras_lakehouse.datasets.delta_versions import remember_loaded_version

    frame = good.select("*")
    remember_loaded_version(frame, 3)
    return frame


def test_the_report_of_an_unchanged_version_stands_without_validating_again(
    at_version_3, monkeypatch, caplog
) -> None:
    from keras_lakehouse.pipelines.data_quality import nodes

    toy = suite(NOT_NULL_KEY, UNIQUE_KEY)
    first, _ = validate_table(at_version_3, toy, NOTHING_NEW)
    assert (first["delta_version"], first["success"]) == (3, True)

    def must_not_run(*_):
        raise AssertionError("the suite ran again on a version it had validated")

    monkeypatch.setattr(nodes, "run_suite", must_not_run)
    with caplog.at_level("INFO", logger=nodes.__name__):
        again, page = validate_table(at_version_3, toy, NOTHING_NEW, first)
    assert again == first
    assert "expect_column_values_to_be_unique" in page
    assert "version 3 was validated by an earlier run" in caplog.text


@pytest.mark.parametrize(
    "change",
    ["another version", "another suite", "new files ingested", "no earlier report"],
)
def test_a_changed_version_suite_or_batch_is_validated_again(
    at_version_3, spark: SparkSession, good: DataFrame, change: str
) -> None:
    from keras_lakehouse.datasets.delta_versions import remember_loaded_version

    toy = suite(NOT_NULL_KEY, UNIQUE_KEY)
    earlier, _ = validate_table(at_version_3, toy, NOTHING_NEW)
    earlier = {**earlier, "checks": []}  # a report the suite would never write: must be redone
    table, counts, last = at_version_3, NOTHING_NEW, earlier
    if change == "another version":
        table = good.select("*")
        remember_loaded_version(table, 4)
    elif change == "another suite":
        toy = suite(NOT_NULL_KEY, UNIQUE_KEY, LABEL_IN_SET)
    elif change == "new files ingested":
        counts = {**NOTHING_NEW, "raw": 2, "quarantine": 2}  # all quarantined: bronze unchanged
    else:
        last = None
    report, _ = validate_table(table, toy, counts, last)
    assert len(report["checks"]) == len(toy.expectations)

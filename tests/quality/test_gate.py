"""The gate and the HTML report on literal check records (no Spark, no Great Expectations)."""

from __future__ import annotations

from typing import Any

import pytest

from keras_lakehouse.quality.checks import FAILED, NOT_EVALUATED, PASSED
from keras_lakehouse.quality.gate import gate_failures, rejected_fraction_check
from keras_lakehouse.quality.report import render_html


def check(expectation: str, status: str, severity: str = "error") -> dict[str, Any]:
    return {
        "expectation": expectation,
        "kwargs": {"column": "key"},
        "severity": severity,
        "status": status,
        "observed": "1 unexpected of 2",
    }


def test_the_gate_stops_on_table_level_errors_and_unevaluated_checks_only() -> None:
    report = {
        "checks": [
            check("expect_column_values_to_be_unique", FAILED),  # table-level error: stops
            check("expect_column_values_to_not_be_null", FAILED),  # per-row: quarantined
            check("expect_column_values_to_be_unique", FAILED, "warn"),  # a warning
            check("expect_column_values_to_be_unique", NOT_EVALUATED, "warn"),  # broken: stops
            check("expect_column_values_to_be_unique", PASSED),
        ]
    }
    assert gate_failures(report) == [
        "expect_column_values_to_be_unique(column=key) [error]: failed; observed 1 unexpected of 2",
        "expect_column_values_to_be_unique(column=key) [warn]: not evaluated; "
        "observed 1 unexpected of 2",
    ]


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        ({"raw": 10, "quarantine": 1}, PASSED),
        ({"raw": 10, "quarantine": 2}, FAILED),
        ({"raw": 0, "quarantine": 0}, PASSED),
        ({}, PASSED),
    ],
)
def test_rejected_fraction_check(counts: dict[str, int], status: str) -> None:
    result = rejected_fraction_check(counts, limit=0.1)
    assert (result["status"], result["severity"]) == (status, "error")
    assert result["kwargs"] == {"max_fraction": 0.1}


def test_the_html_report_escapes_what_the_data_says() -> None:
    hostile = check("expect_column_values_to_be_in_set", FAILED)
    hostile["observed"] = "<script>alert(1)</script>"
    page = render_html(
        {
            "table": "toy",
            "success": False,
            "validated_at": "2025-01-01T00:00:00+00:00",
            "great_expectations_version": "1.0",
            "checks": [hostile],
            "class_distribution": {"<b>": 0.5},
        }
    )
    assert "Data quality: toy — FAILED" in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;: 50.0%" in page

"""Data-quality nodes: validate a bronze table, report, then gate the run."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame

from keras_lakehouse.params import SuiteParams
from keras_lakehouse.quality import gate_failures, render_html, run_suite

logger = logging.getLogger(__name__)


def validate_table(table: DataFrame, suite: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run the table's Great Expectations suite; never raises on bad data.

    Args:
        table: The bronze table.
        suite: The table's suite (``params:<table>_suite``).

    Returns:
        The report as JSON-ready data and as an HTML page, both saved before the gate runs so a
        failing run still leaves its report.
    """
    report = run_suite(table, SuiteParams.model_validate(suite))
    failed = [check for check in report["checks"] if check["status"] != "passed"]
    logger.info(
        "%s: %d/%d checks passed%s",
        report["table"],
        len(report["checks"]) - len(failed),
        len(report["checks"]),
        "" if not failed else f"; not passed: {[check['expectation'] for check in failed]}",
    )
    return report, render_html(report)


def enforce_quality_gate(report: dict[str, Any]) -> dict[str, Any]:
    """Stop the run when an error-severity check failed or a check could not be evaluated.

    Returns:
        A small summary for the stages downstream (they take it as an input, so they never run
        on a table that failed its gate).

    Raises:
        ValueError: Naming each failed expectation and its observed value.
    """
    failures = gate_failures(report)
    warnings = [
        check["expectation"]
        for check in report["checks"]
        if check["status"] == "failed" and check["severity"] == "warn"
    ]
    if warnings:
        logger.warning("%s: warn-severity checks failed: %s", report["table"], warnings)
    if failures:
        raise ValueError(
            f"Data quality gate failed for {report['table']} ({len(failures)} check(s)); see "
            f"data/08_reporting/data_quality/{report['table']}.html:\n  " + "\n  ".join(failures)
        )
    return {"table": report["table"], "passed": True, "warnings": warnings}

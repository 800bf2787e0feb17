"""Data-quality nodes: validate a bronze table, report, record the verdict, then gate the run.

The verdict names the Delta version validated, and is written whether the gate passes or not:
stages downstream read bronze at exactly that version (``validated_by`` in the catalog), and a
failed verdict replaces any earlier PASSED one."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from pyspark.sql import DataFrame

from keras_lakehouse.datasets import delta_version_of
from keras_lakehouse.params import SuiteParams
from keras_lakehouse.quality.gate import gate_failures, rejected_fraction_check
from keras_lakehouse.quality.report import render_html
from keras_lakehouse.quality.suites import run_suite

logger = logging.getLogger(__name__)


def validate_table(
    table: DataFrame,
    suite: SuiteParams,
    ingestion_counts: dict[str, Any] | None = None,
    last_report: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run the table's Great Expectations suite; never raises on bad data.

    A version already validated is not validated again: when ``last_report`` (the report the
    last run wrote) names the same Delta version and the same suite, and the last ingestion
    found nothing new (its counts say ``raw == 0``), that report stands.

    Args:
        table: The bronze table.
        suite: The table's suite (``params:<table>_suite``).
        ingestion_counts: The last ingestion's counts, for the suite's table-level
            ``max_rejected_fraction``.
        last_report: The report of the last run (``<table>_quality_report_known``; ``None``
            before the first run and after a full refresh).

    Returns:
        The report as JSON-ready data and as an HTML page, both saved before the gate runs so a
        failing run still leaves its report.
    """
    version = delta_version_of(table)
    fingerprint = suite_sha256(suite)
    if _still_stands(last_report, version, fingerprint, ingestion_counts):
        logger.info(
            "%s: version %s was validated by an earlier run with this suite, and nothing new "
            "was ingested since: its report stands (%s)",
            last_report["table"],
            version,
            "passed" if last_report["success"] else "failed",
        )
        return last_report, render_html(last_report)
    report = run_suite(table, suite)
    if suite.max_rejected_fraction is not None and ingestion_counts is not None:
        report["checks"].append(
            rejected_fraction_check(ingestion_counts, suite.max_rejected_fraction)
        )
        report["success"] = not gate_failures(report)
    report["delta_version"] = version
    report["suite_sha256"] = fingerprint
    failed = [check for check in report["checks"] if check["status"] != "passed"]
    logger.info(
        "%s: %d/%d checks passed%s",
        report["table"],
        len(report["checks"]) - len(failed),
        len(report["checks"]),
        "" if not failed else f"; not passed: {[check['expectation'] for check in failed]}",
    )
    return report, render_html(report)


def suite_sha256(suite: SuiteParams) -> str:
    """A fingerprint of the suite as configured: a changed expectation changes it."""
    return hashlib.sha256(suite.model_dump_json().encode()).hexdigest()


def _still_stands(
    last: dict[str, Any] | None,
    version: int | None,
    fingerprint: str,
    counts: dict[str, Any] | None,
) -> bool:
    return (
        last is not None
        and version is not None
        and last.get("delta_version") == version
        and last.get("suite_sha256") == fingerprint
        and counts is not None
        and counts.get("raw") == 0
    )


def record_quality_verdict(report: dict[str, Any]) -> dict[str, Any]:
    """The gate's verdict on the version validated; never raises (it is saved either way).

    Args:
        report: The output of ``validate_table``.

    Returns:
        ``table``, ``delta_version``, ``passed``, ``failures`` (error-severity failures and
        unevaluated checks, each with its observed value) and ``warnings``.
    """
    failures = gate_failures(report)
    warnings = [
        check["expectation"]
        for check in report["checks"]
        if check["status"] == "failed" and check["severity"] == "warn"
    ]
    if warnings:
        logger.warning("%s: warn-severity checks failed: %s", report["table"], warnings)
    return {
        "table": report["table"],
        "delta_version": report.get("delta_version"),
        "passed": not failures,
        "failures": failures,
        "warnings": warnings,
    }


def enforce_quality_gate(verdict: dict[str, Any]) -> None:
    """Stop the run when the verdict failed.

    Args:
        verdict: The output of ``record_quality_verdict``.

    Raises:
        ValueError: Naming each failed expectation and its observed value.
    """
    if not verdict["passed"]:
        failures = verdict["failures"]
        raise ValueError(
            f"Data quality gate failed for {verdict['table']} at version "
            f"{verdict['delta_version']} ({len(failures)} check(s)); see "
            f"data/08_reporting/data_quality/{verdict['table']}.html:\n  " + "\n  ".join(failures)
        )

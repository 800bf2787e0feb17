"""Great Expectations (GX Core 1.x) on Spark DataFrames, as plain data in and a report out.

Rows are judged one by one, tables as a whole. A suite's per-row expectations are also the
ingestion's quarantine rules (``quality.row_rules``); the gate (``quality.gate``) fails on
table-level checks only; ``quality.report`` renders a report as HTML.

A suite comes from YAML (``conf/<env>/expectations/<table>.yml``): each expectation by its
snake_case GX name, its kwargs and a severity (``error`` fails the run, ``warn`` only reports).
GX does not raise when data fails, and an expectation it could not evaluate (a missing column,
say) comes back ``success=False`` with no counts: ``run_suite`` labels every check ``passed``,
``failed`` or ``not_evaluated``, and ``gate_failures`` turns that into the reasons to stop.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame

from keras_lakehouse.params import ClassBalanceSpec, SuiteParams
from keras_lakehouse.quality.checks import FAILED, NOT_EVALUATED, PASSED
from keras_lakehouse.quality.gate import gate_failures

logger = logging.getLogger(__name__)

CLASS_BALANCE = "class_balance"
EXAMPLES_SHOWN = 5
_CHECK_ID = "keras_lakehouse_check"
# pyspark logs a multi-KB JSON record (with the Java stack) each time GX touches a missing
# column; the report already says which expectation could not be evaluated and why.
_NOISY_PYSPARK_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def run_suite(frame: DataFrame, suite: SuiteParams) -> dict[str, Any]:
    """Validate ``frame`` against ``suite`` in one GX pass.

    Args:
        frame: The table to validate.
        suite: The suite: expectations with severities and an optional class-balance floor.

    Returns:
        A JSON-ready report: ``table``, ``success`` (no error-severity failure and every check
        evaluated), ``checks`` (one entry per expectation, in suite order) and
        ``class_distribution``.

    Raises:
        ValueError: When an expectation name or its kwargs are not valid GX.
    """
    import great_expectations as gx  # a slow import: paid only when a suite runs

    expectations = [_expectation(index, spec) for index, spec in enumerate(suite.expectations)]
    if suite.class_balance is not None:
        expectations.append(_class_balance_expectation(len(expectations), suite.class_balance))
    batch = _batch_definition(gx, suite.table).get_batch(batch_parameters={"dataframe": frame})
    _quiet_pyspark_loggers()
    result = batch.validate(gx.ExpectationSuite(name=suite.table, expectations=expectations))
    by_id = {item.expectation_config.meta.get(_CHECK_ID): item for item in result.results}
    specs: list[dict[str, Any]] = [
        {"expectation": spec.expectation, "kwargs": spec.kwargs, "severity": spec.severity}
        for spec in suite.expectations
    ]
    if suite.class_balance is not None:
        specs.append(
            {
                "expectation": CLASS_BALANCE,
                "kwargs": {
                    "column": suite.class_balance.column,
                    "min_fraction": suite.class_balance.min_fraction,
                },
                "severity": suite.class_balance.severity,
            }
        )
    checks = [_check(spec, by_id.get(index)) for index, spec in enumerate(specs)]
    distribution = (
        _class_distribution(frame, suite.class_balance.column)
        if suite.class_balance is not None and suite.class_balance.column in frame.columns
        else {}
    )
    report = {
        "table": suite.table,
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "great_expectations_version": gx.__version__,
        "checks": checks,
        "class_distribution": distribution,
    }
    report["success"] = not gate_failures(report)
    return report


def _expectation(index: int, spec: Any) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        expectation_class = get_expectation_impl(spec.expectation)
        return expectation_class(**spec.kwargs, meta={_CHECK_ID: index})
    except Exception as error:
        raise ValueError(
            f"Expectation #{index} {spec.expectation}({spec.kwargs}) is not valid Great "
            f"Expectations. Received error: {type(error).__name__}: {error}"
        ) from error


def _class_balance_expectation(index: int, spec: ClassBalanceSpec) -> Any:
    import great_expectations.expectations as gxe

    share = "COUNT(*) / (SELECT COUNT(*) FROM {batch})"
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"SELECT `{spec.column}` FROM {{batch}} GROUP BY `{spec.column}` "
            f"HAVING {share} < {spec.min_fraction}"
        ),
        description=f"every {spec.column} holds at least {spec.min_fraction:.0%} of the rows",
        meta={_CHECK_ID: index},
    )


def _batch_definition(gx: Any, name: str) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    return (
        context.data_sources.add_spark(name="spark")
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe("whole")
    )


def _check(spec: dict[str, Any], result: Any) -> dict[str, Any]:
    check = {**spec, "status": NOT_EVALUATED, "observed": "no result came back"}
    if result is None:
        return check
    outcome = result.result or {}
    error = _raised(result.exception_info or {})
    if error is not None:
        return {**check, "observed": error}
    status = PASSED if result.success else FAILED
    return {**check, "status": status, "observed": _observed(outcome)}


def _raised(exception_info: dict[str, Any]) -> str | None:
    """The exception message when GX could not evaluate the expectation (either shape)."""
    entries = (
        [exception_info]
        if "raised_exception" in exception_info
        else [value for value in exception_info.values() if isinstance(value, dict)]
    )
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "exception without a message")
    return None


def _observed(outcome: dict[str, Any]) -> Any:
    if "unexpected_count" in outcome:
        summary = (
            f"{outcome['unexpected_count']} unexpected of {outcome.get('element_count')} "
            f"({outcome.get('unexpected_percent') or 0:.2f}%)"
        )
        examples = outcome.get("partial_unexpected_list") or []
        return f"{summary}, e.g. {examples[:EXAMPLES_SHOWN]}" if examples else summary
    if "observed_value" in outcome:
        return json.loads(json.dumps(outcome["observed_value"], default=str))
    if outcome.get("details"):
        return json.loads(json.dumps(outcome["details"], default=str))
    return "ok" if not outcome else json.loads(json.dumps(outcome, default=str))


def _class_distribution(frame: DataFrame, column: str) -> dict[str, float]:
    counts = frame.groupBy(column).count().collect()  # one row per class
    total = sum(row["count"] for row in counts) or 1
    return {str(row[column]): row["count"] / total for row in sorted(counts, key=lambda r: r[0])}


def _quiet_pyspark_loggers() -> None:
    from pyspark.logger import PySparkLogger

    for name in _NOISY_PYSPARK_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)

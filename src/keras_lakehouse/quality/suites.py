"""Great Expectations (GX Core 1.x) on Spark DataFrames, as plain data in and a report out.

Rows are judged one by one, tables as a whole. A suite's per-row expectations (values not
null, in a set, between bounds, matching a regex, of a length) are also the ingestion's
quarantine rules: ``row_rules`` turns them into Spark predicates from the same YAML, so a row
that breaks one never reaches bronze and is quarantined with the expectation as its reason. The
gate fails on table-level checks only (columns, row counts, uniqueness, class balance, the
fraction of rows this run rejected): one bad file, or a poisoned row already in bronze, cannot
stop every later run. Per-row checks are still validated and reported.

A suite comes from YAML (``conf/<env>/expectations/<table>.yml``): each expectation by its
snake_case GX name, its kwargs and a severity (``error`` fails the run, ``warn`` only reports).
GX does not raise when data fails, and an expectation it could not evaluate (a missing column,
say) comes back ``success=False`` with no counts: ``run_suite`` labels every check ``passed``,
``failed`` or ``not_evaluated``, and ``gate_failures`` turns that into the reasons to stop.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame

from keras_lakehouse.params import ClassBalanceSpec, SuiteParams

logger = logging.getLogger(__name__)

PASSED, FAILED, NOT_EVALUATED = "passed", "failed", "not_evaluated"
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


# The per-row expectations and the Spark predicate each stands for (True: the row passes). Like
# GX, a null value passes every rule but the not-null one.
def _between(value: Any, kwargs: dict[str, Any]) -> Any:
    from pyspark.sql import functions as F  # noqa: N812

    passes = F.lit(True)
    if kwargs.get("min_value") is not None:
        passes = passes & (value >= F.lit(kwargs["min_value"]))
    if kwargs.get("max_value") is not None:
        passes = passes & (value <= F.lit(kwargs["max_value"]))
    return value.isNull() | passes


ROW_EXPECTATIONS = {
    "expect_column_values_to_not_be_null": lambda column, kwargs: column.isNotNull(),
    "expect_column_values_to_be_in_set": lambda column, kwargs: (
        column.isNull() | column.isin(list(kwargs["value_set"]))
    ),
    "expect_column_values_to_be_between": lambda column, kwargs: _between(column, kwargs),
    "expect_column_values_to_match_regex": lambda column, kwargs: (
        column.isNull() | column.rlike(kwargs["regex"])
    ),
    "expect_column_value_lengths_to_be_between": lambda column, kwargs: _between(
        _length(column), kwargs
    ),
}
REJECTED_FRACTION = "rejected_fraction"


def _length(column: Any) -> Any:
    from pyspark.sql import functions as F  # noqa: N812

    return F.length(column)


def is_row_check(expectation: str) -> bool:
    """Whether ``expectation`` judges rows one by one (and so is a quarantine rule)."""
    return expectation in ROW_EXPECTATIONS


def row_rules(suite: SuiteParams) -> list[tuple[str, Any]]:
    """The suite's error-severity per-row expectations as ``(reason, predicate)`` pairs, in
    suite order. The reason names the expectation and its column, e.g.
    ``expect_column_values_to_be_between(column=width)``."""
    from pyspark.sql import functions as F  # noqa: N812

    rules = []
    for spec in suite.expectations:
        if spec.severity == "error" and is_row_check(spec.expectation):
            column = spec.kwargs["column"]
            reason = f"{spec.expectation}(column={column})"
            rules.append((reason, ROW_EXPECTATIONS[spec.expectation](F.col(column), spec.kwargs)))
    return rules


def rejected_fraction_check(counts: dict[str, Any], limit: float) -> dict[str, Any]:
    """A table-level check: the share of this run's raw records that went to quarantine."""
    raw = int(counts.get("raw") or 0)
    fraction = int(counts.get("quarantine") or 0) / raw if raw else 0.0
    return {
        "expectation": REJECTED_FRACTION,
        "kwargs": {"max_fraction": limit},
        "severity": "error",
        "status": PASSED if fraction <= limit else FAILED,
        "observed": f"{fraction:.4f} of {raw} raw records quarantined in the last ingestion",
    }


def gate_failures(report: dict[str, Any]) -> list[str]:
    """Say why ``report`` must stop the run: error-severity failures and unevaluated checks.

    A check GX could not evaluate fails the gate whatever its severity: a broken check is a
    broken gate, not a warning. A failed per-row check does not (ingestion quarantines such
    rows; see the module docstring): it is reported.
    """
    return [
        f"{_describe_check(check)}: {check['status'].replace('_', ' ')}; "
        f"observed {check['observed']}"
        for check in report["checks"]
        if check["status"] == NOT_EVALUATED
        or (
            check["status"] == FAILED
            and check["severity"] == "error"
            and not is_row_check(check["expectation"])
        )
    ]


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the report for a person to read."""
    rows = "\n".join(
        "<tr class='{status}'><td>{name}</td><td>{severity}</td><td>{status}</td>"
        "<td>{observed}</td></tr>".format(
            status=html.escape(check["status"]),
            name=html.escape(_describe_check(check)),
            severity=html.escape(check["severity"]),
            observed=html.escape(str(check["observed"])),
        )
        for check in report["checks"]
    )
    distribution = ", ".join(
        f"{html.escape(str(label))}: {share:.1%}"
        for label, share in report.get("class_distribution", {}).items()
    )
    verdict = "PASSED" if report["success"] else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data quality: {html.escape(report["table"])} — {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
tr.passed td:nth-child(3) {{ color: #1a7f37; }} tr.failed td:nth-child(3) {{ color: #cf222e; }}
tr.not_evaluated td:nth-child(3) {{ color: #9a6700; font-weight: bold; }}
</style></head><body>
<h1>Data quality: {html.escape(report["table"])} — {verdict}</h1>
<p>Validated at {html.escape(report["validated_at"])} with Great Expectations
{html.escape(report["great_expectations_version"])}.</p>
<p>Class distribution: {distribution or "n/a"}</p>
<table><thead><tr><th>Expectation</th><th>Severity</th><th>Status</th><th>Observed</th></tr>
</thead><tbody>
{rows}
</tbody></table>
</body></html>
"""


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


def _describe_check(check: dict[str, Any]) -> str:
    kwargs = ", ".join(f"{key}={value}" for key, value in check["kwargs"].items())
    return f"{check['expectation']}({kwargs}) [{check['severity']}]"


def _class_distribution(frame: DataFrame, column: str) -> dict[str, float]:
    counts = frame.groupBy(column).count().collect()  # one row per class
    total = sum(row["count"] for row in counts) or 1
    return {str(row[column]): row["count"] / total for row in sorted(counts, key=lambda r: r[0])}


def _quiet_pyspark_loggers() -> None:
    from pyspark.logger import PySparkLogger

    for name in _NOISY_PYSPARK_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)

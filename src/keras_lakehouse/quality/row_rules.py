"""A suite's per-row expectations as Spark predicates: ingestion's quarantine rules.

Values not null, in a set, between bounds, matching a regex, of a length: ``row_rules`` turns
these expectations into Spark predicates from the same suite YAML, so a row that breaks one never
reaches bronze and is quarantined with the expectation as its reason. Like GX, a null value
passes every rule but the not-null one.
"""

from __future__ import annotations

from typing import Any

from keras_lakehouse.params import SuiteParams


def _between(value: Any, kwargs: dict[str, Any]) -> Any:
    """``value`` within ``min_value`` and ``max_value`` (either may be absent), or null."""
    from pyspark.sql import functions as F  # noqa: N812

    passes = F.lit(True)
    if kwargs.get("min_value") is not None:
        passes = passes & (value >= F.lit(kwargs["min_value"]))
    if kwargs.get("max_value") is not None:
        passes = passes & (value <= F.lit(kwargs["max_value"]))
    return value.isNull() | passes


def _length(column: Any) -> Any:
    """The length of a string or binary ``column``."""
    from pyspark.sql import functions as F  # noqa: N812

    return F.length(column)


# The per-row expectations and the Spark predicate each stands for (True: the row passes).
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


def is_row_check(expectation: str) -> bool:
    """Whether ``expectation`` judges rows one by one (and so is a quarantine rule).

    Args:
        expectation: A GX expectation's snake_case name.

    Returns:
        ``True`` for the expectations in ``ROW_EXPECTATIONS``.
    """
    return expectation in ROW_EXPECTATIONS


def row_rules(suite: SuiteParams) -> list[tuple[str, Any]]:
    """The suite's error-severity per-row expectations as ``(reason, predicate)`` pairs.

    Args:
        suite: A table's suite.

    Returns:
        In suite order, the reason (the expectation and its column, e.g.
        ``expect_column_values_to_be_between(column=width)``) and the Spark ``Column`` that is
        true for a row that passes.
    """
    from pyspark.sql import functions as F  # noqa: N812

    rules = []
    for spec in suite.expectations:
        if spec.severity == "error" and is_row_check(spec.expectation):
            column = spec.kwargs["column"]
            reason = f"{spec.expectation}(column={column})"
            rules.append((reason, ROW_EXPECTATIONS[spec.expectation](F.col(column), spec.kwargs)))
    return rules

"""Routing checked rows: the per-row rules, and accepted + quarantine = checked."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.ingest import reasons
from keras_lakehouse.ingest.routing import apply_row_rules, route_checked, rule_column

WIDTH_RULE = "expect_column_values_to_be_between(column=width)"


def test_a_rule_reason_names_its_column() -> None:
    assert rule_column(WIDTH_RULE) == "width"
    with pytest.raises(ValueError, match=r"Received: 'too_large'"):
        rule_column(reasons.TOO_LARGE)


@pytest.fixture
def checked(spark: SparkSession):
    return spark.createDataFrame(
        [("a", 10, None, None), ("b", 30, None, None), ("c", 5, reasons.CORRUPT, "bad bytes")],
        "path string, width int, reason string, detail string",
    )


def test_only_accepted_rows_take_a_broken_rule_as_reason(checked) -> None:
    ruled = apply_row_rules(checked, [(WIDTH_RULE, F.col("width") >= 16)], table="images_bronze")
    rows = {row["path"]: (row["reason"], row["detail"]) for row in ruled.collect()}
    assert rows == {
        "a": (WIDTH_RULE, "width=10"),
        "b": (None, None),
        "c": (reasons.CORRUPT, "bad bytes"),  # rejected first: keeps its own reason
    }


def test_a_rule_on_a_column_the_rows_lack_names_it(checked) -> None:
    rule = "expect_column_values_to_not_be_null(column=label)"
    with pytest.raises(
        ValueError, match=r"images_bronze: .*\['expect_column_values_to_not_be_null"
    ):
        apply_row_rules(checked, [(rule, F.col("label").isNotNull())], table="images_bronze")


def test_routing_counts_every_checked_row_once(checked) -> None:
    kept, quarantine, counts = route_checked(
        checked, "images to score", ("path",), ("path", "reason"), accepted="accepted"
    )
    assert sorted(row["path"] for row in kept.collect()) == ["a", "b"]
    assert [row["path"] for row in quarantine.collect()] == ["c"]
    assert counts == {
        "raw": 3,
        "accepted": 2,
        "quarantine": 1,
        "quarantine_by_reason": {reasons.CORRUPT: 1},
    }
    assert "ingested_at" in kept.columns
    assert "ingested_at" in quarantine.columns

"""Checked rows → the accepted batch and the quarantine batch, with a proof of conservation.

Ingestion routes accepted rows to bronze, batch inference to the rows it scores; every rejected
row goes to a quarantine table with its reason. Before routing, ingestion applies the bronze
suite's per-row rules (``apply_row_rules``): a row that breaks one is quarantined too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

logger = logging.getLogger(__name__)

# The tables each route writes (every batch also gets ``ingested_at``).
IMAGES_BRONZE_COLUMNS = ("key", "path", "label", "format", "width", "height", "mode", "content")
IMAGES_QUARANTINE_COLUMNS = ("path", "label", "key", "reason", "detail")
TEXTS_BRONZE_COLUMNS = ("id", "text", "label", "text_sha256", "source", "line")
TEXTS_QUARANTINE_COLUMNS = ("source", "line", "id", "label", "reason", "detail", "raw")
# Batch inference: records to score carry no label.
IMAGES_TO_SCORE_COLUMNS = ("key", "path", "content")
TEXTS_TO_SCORE_COLUMNS = ("id", "text", "source", "line")
INFERENCE_IMAGES_QUARANTINE_COLUMNS = ("path", "key", "reason", "detail")
INFERENCE_TEXTS_QUARANTINE_COLUMNS = ("source", "line", "id", "reason", "detail", "raw")

DETAIL_CHARS = 200  # a rule's detail quotes at most this much of the offending value

# A per-row rule: the reason a row that breaks it gets, and the predicate it must pass. The
# reason names the column: ``expect_column_values_to_be_between(column=width)``.
RowRule = tuple[str, Column]


def apply_row_rules(checked: DataFrame, rules: Sequence[RowRule], *, table: str) -> DataFrame:
    """Give each accepted row that breaks a rule the first broken rule as its reason, and the
    offending value (``width=10``) as its detail.

    Args:
        checked: Checked rows, with ``reason`` and ``detail``.
        rules: The suite's per-row rules (``quality``'s ``row_rules``), in suite order.
        table: The table the rules guard (for the error message).

    Returns:
        ``checked`` with the broken rules as reasons; rows already rejected keep their reason.

    Raises:
        ValueError: When a rule names a column the checked rows do not have.
    """
    missing = sorted({reason for reason, _ in rules if rule_column(reason) not in checked.columns})
    if missing:
        raise ValueError(
            f"{table}: per-row rules on columns the ingestion does not produce: {missing}. "
            f"Received columns: {checked.columns}"
        )
    if not rules:
        return checked
    accepted = F.col("reason").isNull()
    broken = F.coalesce(*[F.when(~passes, F.lit(reason)) for reason, passes in rules])
    value = F.coalesce(
        *[F.when(~passes, _quoted_value(rule_column(reason))) for reason, passes in rules]
    )
    return checked.withColumn(
        "detail", F.when(accepted & broken.isNotNull(), value).otherwise(F.col("detail"))
    ).withColumn("reason", F.when(accepted, broken).otherwise(F.col("reason")))


def rule_column(reason: str) -> str:
    """The column a rule's reason names: ``expect_…(column=width)`` → ``width``.

    Raises:
        ValueError: When the reason names no column.
    """
    if "(column=" not in reason:
        raise ValueError(
            f"Expected a per-row rule reason such as 'expect_…(column=<name>)'. Received: "
            f"{reason!r}"
        )
    return reason.split("(column=", 1)[1].rstrip(")")


def route_checked(
    checked: DataFrame,
    name: str,
    accepted_columns: tuple[str, ...],
    quarantine_columns: tuple[str, ...],
    *,
    accepted: str = "bronze",
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Separate the accepted rows from the rejected ones of one cached check, count them and
    prove conservation (every checked row is in exactly one of the two).

    Args:
        checked: Checked rows, ``reason`` null when accepted.
        name: What the rows are, for the log and errors (``images``, ``texts to score``).
        accepted_columns: The columns of the accepted batch.
        quarantine_columns: The columns of the quarantine batch.
        accepted: The key of the accepted count in the returned counts.

    Returns:
        The accepted rows, the quarantined rows (both with ``ingested_at``) and the counts:
        ``raw``, ``<accepted>``, ``quarantine`` and ``quarantine_by_reason``.

    Raises:
        RuntimeError: When the accepted and quarantined rows do not add up to the checked rows.
    """
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    stamp = F.current_timestamp().alias("ingested_at")
    kept = checked.filter(F.col("reason").isNull()).select(*accepted_columns, stamp)
    quarantine = checked.filter(F.col("reason").isNotNull()).select(*quarantine_columns, stamp)
    raw_count, kept_count, quarantine_count = checked.count(), kept.count(), quarantine.count()
    by_reason = {
        row["reason"]: row["count"]
        for row in checked.filter(F.col("reason").isNotNull()).groupBy("reason").count().collect()
    }
    counts = {
        "raw": raw_count,
        accepted: kept_count,
        "quarantine": quarantine_count,
        "quarantine_by_reason": dict(sorted(by_reason.items())),
    }
    logger.info("%s ingestion counts: %s", name, counts)
    if kept_count + quarantine_count != raw_count or sum(by_reason.values()) != quarantine_count:
        raise RuntimeError(
            f"{name}: conservation broken: expected {raw_count} checked rows to be {accepted} or "
            f"quarantine. Received: {kept_count} {accepted} + {quarantine_count} quarantine (by "
            f"reason: {by_reason})."
        )
    return kept, quarantine, counts


def _quoted_value(column: str) -> Column:
    """``column=<value>`` (``null`` for a null), cut at ``DETAIL_CHARS``."""
    shown = F.coalesce(F.col(column).cast("string"), F.lit("null"))
    return F.substring(F.concat(F.lit(f"{column}="), shown), 1, DETAIL_CHARS)

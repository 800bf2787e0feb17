"""Duplicates: of several accepted rows with one key, only the first is accepted, within a
run (``mark_duplicates``) and across runs (``mark_known_duplicates``, against bronze)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812


def mark_duplicates(
    checked: DataFrame,
    *,
    key: str,
    order_by: list[str],
    reason: str,
    detail: Column,
    first: Column,
) -> DataFrame:
    """Among accepted rows sharing ``key``, keep the first and give the others ``reason``."""
    accepted = F.col("reason").isNull()
    window = Window.partitionBy(key, accepted).orderBy(*order_by)
    is_duplicate = accepted & F.col(key).isNotNull() & (F.row_number().over(window) > 1)
    marked = checked.withColumn("_first", F.first(first).over(window)).withColumn(
        "_duplicate", is_duplicate
    )
    return (
        marked.withColumn("detail", F.when(F.col("_duplicate"), detail).otherwise(F.col("detail")))
        .withColumn("reason", F.when(F.col("_duplicate"), F.lit(reason)).otherwise(F.col("reason")))
        .drop("_first", "_duplicate")
    )


def mark_known_duplicates(
    checked: DataFrame,
    known: DataFrame,
    *,
    key: str,
    identity: list[str],
    reason: str,
    detail_prefix: str,
) -> DataFrame:
    """Give ``reason`` to accepted rows whose ``key`` an earlier run accepted for another row.

    ``known`` holds the rows accepted before (bronze: ``key`` and the ``identity`` columns). A
    row with the same identity is the same row seen again (a run that died before settling its
    files): it stays accepted, and its MERGE changes nothing.
    """
    here = F.concat_ws(":", *[F.col(column).cast("string") for column in identity])
    earlier = known.select(
        F.col(key).alias("_known_key"),
        F.concat_ws(":", *[F.col(column).cast("string") for column in identity]).alias("_known"),
    )
    first = earlier.groupBy("_known_key").agg(F.min("_known").alias("_first_known"))
    same = earlier.dropDuplicates().select(
        F.col("_known_key").alias("_same_key"), F.col("_known").alias("_same")
    )
    marked = (
        checked.join(first, checked[key] == first["_known_key"], "left")
        .join(same, (checked[key] == same["_same_key"]) & (here == same["_same"]), "left")
        .withColumn(
            "_duplicate",
            F.col("reason").isNull() & F.col("_known_key").isNotNull() & F.col("_same").isNull(),
        )
    )
    return (
        marked.withColumn(
            "detail",
            F.when(
                F.col("_duplicate"),
                F.concat(F.lit(detail_prefix), F.col("_first_known"), F.lit(" (an earlier run)")),
            ).otherwise(F.col("detail")),
        )
        .withColumn("reason", F.when(F.col("_duplicate"), F.lit(reason)).otherwise(F.col("reason")))
        .drop("_known_key", "_first_known", "_same_key", "_same", "_duplicate")
    )

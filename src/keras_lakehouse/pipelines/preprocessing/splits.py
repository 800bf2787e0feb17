"""Splits and labels: a row's split is a seeded hash of its content key (so it never moves as
rows are added), its label index comes from the parameters' label list."""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.params import SPLIT_NAMES, SplitParams

logger = logging.getLogger(__name__)

HASH_HEX_DIGITS = 12  # 48 bits of the SHA-256: plenty for a uniform fraction


def assign_split(*, key: str, seed: int, proportions: SplitParams) -> Column:
    """The split of each row, from a seeded hash of its content key.

    Rows with the same key always land in the same split, whatever their id or path, and the
    assignment does not depend on the order, partitioning or size of the table.

    Args:
        key: The column whose value decides the split.
        seed: The hash's seed (another seed, another assignment).
        proportions: The share of each split.

    Returns:
        A column holding ``train``, ``val`` or ``test``.
    """
    digest = F.sha2(F.concat_ws(":", F.lit(str(seed)), F.col(key).cast("string")), 256)
    fraction = F.conv(F.substring(digest, 1, HASH_HEX_DIGITS), 16, 10).cast("double") / float(
        16**HASH_HEX_DIGITS
    )
    train_end = proportions.train
    val_end = train_end + proportions.val
    return (
        F.when(fraction < train_end, F.lit("train"))
        .when(fraction < val_end, F.lit("val"))
        .otherwise(F.lit("test"))
    )


def build_label_map(labels: list[str]) -> dict[str, int]:
    """Label → index, sorted by label so the mapping never depends on data order."""
    return {label: index for index, label in enumerate(sorted(labels))}


def with_split_and_index(
    frame: DataFrame, key: str, seed: int, proportions: SplitParams, labels: dict[str, int]
) -> DataFrame:
    index = F.create_map(*(F.lit(value) for pair in labels.items() for value in pair))
    split = assign_split(key=key, seed=seed, proportions=proportions)
    return frame.withColumn("split", split).withColumn("label_index", index[F.col("label")])


def require_every_class_in_every_split(
    frame: DataFrame, table: str, labels: dict[str, int]
) -> None:
    counts = {
        (row["label"], row["split"]): row["count"]
        for row in frame.groupBy("label", "split").count().collect()  # labels × 3 rows
    }
    missing = [
        f"{label} has {counts.get((label, split), 0)} rows in {split} "
        f"({', '.join(f'{s}={counts.get((label, s), 0)}' for s in SPLIT_NAMES)})"
        for label in labels
        for split in SPLIT_NAMES
        if not counts.get((label, split))
    ]
    if missing:
        raise ValueError(
            f"Every class must appear in every split of {table}. Received: " + "; ".join(missing)
        )
    logger.info("%s split counts: %s", table, dict(sorted(counts.items())))

"""Silver as the last run left it: which rows are new or stale, and the text vectorizer's parts
(the vocabulary fitted on the train split, standardised like Keras, and its fingerprint)."""

from __future__ import annotations

import hashlib
import json
import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.ingest.tokens import keras_standardize

logger = logging.getLogger(__name__)

PAD_TOKEN, OOV_TOKEN = "", "[UNK]"  # ids 0 and 1, as keras.layers.TextVectorization numbers them
IMAGES_SILVER_CHECKED = ("label", "label_index", "split", "image_size")
TEXTS_SILVER_CHECKED = ("text_sha256", "label", "label_index", "split", "vectorizer_sha256")


def rows_silver_lacks(
    rows: DataFrame, known: DataFrame | None, key: str, checked: tuple[str, ...], table: str
) -> tuple[DataFrame, int | None, int | None]:
    """The rows whose ``key`` silver lacks, or holds with other values in ``checked``.

    Only the key and the ``checked`` columns of silver are read; one Spark job counts.

    Args:
        rows: This run's rows, with ``key`` and every ``checked`` column.
        known: The silver table as the last run left it, ``None`` when there is none yet.
        key: The column that identifies a row (the MERGE key).
        checked: The columns whose change makes a silver row stale.
        table: The silver table's name, for messages.

    Returns:
        The subset of ``rows`` to compute and MERGE, how many rows that is and how many rows
        there are in all (both ``None`` when there is no silver yet: every row is new).

    Raises:
        ValueError: When ``known`` lacks ``key`` or a ``checked`` column.
    """
    if known is None:
        return rows, None, None
    missing = [column for column in (key, *checked) if column not in known.columns]
    if missing:
        raise ValueError(
            f"Expected columns {[key, *checked]} in {table} (an older layout?). "
            f"Received: {known.columns}. Delete the table: the next run rebuilds it from bronze."
        )
    silver = known.select(key, *(F.col(name).alias(f"_silver_{name}") for name in checked))
    joined = rows.join(silver, on=key, how="left")
    current = F.lit(True)
    for name in checked:
        current = current & F.col(name).eqNullSafe(F.col(f"_silver_{name}"))
    stale = ~current
    counts = joined.agg(F.count(F.lit(1)).alias("all"), F.sum(stale.cast("long")).alias("todo"))
    row = counts.first()  # one row
    return joined.filter(stale).select(*rows.columns), int(row["todo"] or 0), int(row["all"])


def log_incremental(table: str, verb: str, todo: int | None, total: int | None) -> None:
    if todo is None or total is None:
        logger.info("%s does not exist yet: %s every row.", table, verb)
    else:
        logger.info(
            "%s: %s %d rows (new or stale); %d already in silver, unchanged.",
            table,
            verb,
            todo,
            total - todo,
        )


def vectorizer_fingerprint(vocabulary: list[str], sequence_length: int) -> str:
    """SHA-256 of what decides a text's token ids: the vocabulary and the sequence length."""
    spec = json.dumps({"vocabulary": vocabulary, "sequence_length": sequence_length})
    return hashlib.sha256(spec.encode("utf-8")).hexdigest()


def fit_on_train(texts_split: DataFrame, vocabulary_size: int) -> list[str]:
    keep = vocabulary_size - 2
    tokens = (
        texts_split.filter(F.col("split") == "train")
        .select(F.explode(F.split(keras_standardize(F.col("text")), r"\s+")).alias("token"))
        .filter(F.col("token") != "")
        .groupBy("token")
        .count()
        .orderBy(F.desc("count"), F.asc("token"))
        .limit(keep)
        .collect()  # at most vocabulary_size rows
    )
    vocabulary = [PAD_TOKEN, OOV_TOKEN, *(row["token"] for row in tokens)]
    logger.info("Vocabulary of %d tokens fitted on the train split.", len(vocabulary))
    return vocabulary

"""Preprocessing nodes: leakage-free splits, decoded images, a train-only vocabulary.

Spark does the work; the driver only ever sees small aggregates (class counts per split, the
vocabulary's token counts, the label map).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.images import resize_rgb
from keras_lakehouse.params import (
    SPLIT_NAMES,
    ImagePreprocessingParams,
    SplitParams,
    TextPreprocessingParams,
)

logger = logging.getLogger(__name__)

HASH_HEX_DIGITS = 12  # 48 bits of the SHA-256: plenty for a uniform fraction
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"  # ids 0 and 1, as keras.layers.TextVectorization numbers them
# keras.layers.TextVectorization's "lower_and_strip_punctuation": tf.strings.lower lowercases
# ASCII only, so Spark's (Unicode) lower() would disagree on "É"; translate() does the same as TF.
_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_KERAS_PUNCTUATION = r"[!\"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']"

IMAGES_SILVER_COLUMNS = ("key", "label", "label_index", "split", "image", "image_size")
TEXTS_SILVER_COLUMNS = ("id", "text", "label", "label_index", "split", "text_sha256")


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


def pass_gated_table(table: DataFrame, verdict: dict[str, Any]) -> DataFrame:
    """Return ``table`` once its data-quality verdict passed.

    The verdict is an input so that Kedro orders this stage after the gate; the check here guards
    runs of this stage alone.

    Args:
        table: Bronze, read at the version its verdict validated (``validated_by`` in the
            catalog).
        verdict: The table's data-quality verdict (``<table>_quality_gate``).

    Returns:
        ``table``, unchanged.

    Raises:
        ValueError: When the verdict did not pass, or ``table`` was read at another version.
    """
    from keras_lakehouse.datasets import delta_version_of

    if not verdict.get("passed"):
        raise ValueError(
            f"The data-quality gate did not pass for {verdict.get('table')} at version "
            f"{verdict.get('delta_version')}: {verdict.get('failures')}"
        )
    read = delta_version_of(table)
    if read is not None and read != verdict.get("delta_version"):
        raise ValueError(
            f"{verdict.get('table')} was read at version {read}, but its gate validated version "
            f"{verdict.get('delta_version')}: read it through its `validated_by` catalog entry."
        )
    return table


def split_images(
    images_bronze: DataFrame, seed: int, proportions: SplitParams, labels: list[str]
) -> tuple[DataFrame, dict[str, int]]:
    """Assign each image to train/val/test by its content key and index its label.

    Args:
        images_bronze: The bronze images table.
        seed: The ``preprocessing.seed`` parameter.
        proportions: The ``preprocessing.split`` parameters.
        labels: The ``preprocessing.image_labels`` parameter.

    Returns:
        The rows with ``split`` and ``label_index``, and the label map artifact.

    Raises:
        ValueError: When a class is missing from a split.
    """
    label_map = build_label_map(labels)
    frame = _with_split_and_index(images_bronze, "key", seed, proportions, label_map)
    _require_every_class_in_every_split(frame, "images_bronze", label_map)
    return frame, label_map


def split_texts(
    texts_bronze: DataFrame, seed: int, proportions: SplitParams, labels: list[str]
) -> tuple[DataFrame, dict[str, int]]:
    """Assign each text to train/val/test by the hash of its normalised content.

    Identical texts under different ids share ``text_sha256`` and so a split: no test text was
    seen in training under another id.

    Args:
        texts_bronze: The bronze texts table.
        seed: The ``preprocessing.seed`` parameter.
        proportions: The ``preprocessing.split`` parameters.
        labels: The ``preprocessing.text_labels`` parameter.

    Returns:
        The rows with ``split`` and ``label_index``, and the label map artifact.

    Raises:
        ValueError: When a class is missing from a split.
    """
    label_map = build_label_map(labels)
    frame = _with_split_and_index(texts_bronze, "text_sha256", seed, proportions, label_map)
    _require_every_class_in_every_split(frame, "texts_bronze", label_map)
    return frame, label_map


def decode_images(images_split: DataFrame, settings: ImagePreprocessingParams) -> DataFrame:
    """Decode each image once, as RGB resized to ``image_size``, stored as uint8 HWC bytes.

    Args:
        images_split: The output of ``split_images``.
        settings: The ``preprocessing.images`` parameters.

    Returns:
        The ``images_silver`` rows.
    """
    size, max_pixels = settings.image_size, settings.max_pixels

    @F.pandas_udf(T.BinaryType())
    def to_pixels(content: pd.Series) -> pd.Series:
        return content.map(lambda value: resize_rgb(bytes(value), size, max_pixels))

    return images_split.select(
        "key",
        "label",
        "label_index",
        "split",
        to_pixels("content").alias("image"),
        F.lit(size).alias("image_size"),
    )


def fit_vocabulary(texts_split: DataFrame, settings: TextPreprocessingParams) -> list[str]:
    """Fit the vocabulary on the train split only, with Spark.

    Tokens are standardised as ``keras.layers.TextVectorization`` does by default
    (ASCII-lowercase, punctuation stripped, split on whitespace), counted, and the most frequent
    kept (ties broken alphabetically, so the result is deterministic).

    Args:
        texts_split: The output of ``split_texts``.
        settings: The ``preprocessing.texts`` parameters.

    Returns:
        The vocabulary, starting with the padding and OOV tokens, at most ``vocabulary_size`` long.
    """
    keep = settings.vocabulary_size - 2
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


def keras_standardize(text: Column) -> Column:
    """Spark's version of TextVectorization's ``lower_and_strip_punctuation``."""
    lowered = F.translate(text, _ASCII_UPPER, _ASCII_UPPER.lower())
    return F.trim(F.regexp_replace(lowered, _KERAS_PUNCTUATION, ""))


def vectorize_texts(
    texts_split: DataFrame, vocabulary: list[str], settings: TextPreprocessingParams
) -> DataFrame:
    """Token ids for every text, computed by the same Keras layer the model ships with.

    Args:
        texts_split: The output of ``split_texts``.
        vocabulary: The output of ``fit_vocabulary``.
        settings: The ``preprocessing.texts`` parameters.

    Returns:
        The ``texts_silver`` rows, with ``token_ids``.
    """
    length = settings.sequence_length

    @F.pandas_udf(T.ArrayType(T.IntegerType()))
    def to_ids(text: pd.Series) -> pd.Series:
        from keras_lakehouse.serving.serving_code import build_vectorizer

        layer = build_vectorizer(vocabulary, length)
        ids = np.asarray(layer(np.asarray(text.to_numpy(dtype=object), dtype=object)))
        return pd.Series(list(ids.astype(np.int32)))

    return texts_split.select(*TEXTS_SILVER_COLUMNS, to_ids("text").alias("token_ids"))


def _with_split_and_index(
    frame: DataFrame, key: str, seed: int, proportions: SplitParams, labels: dict[str, int]
) -> DataFrame:
    index = F.create_map(*(F.lit(value) for pair in labels.items() for value in pair))
    split = assign_split(key=key, seed=seed, proportions=proportions)
    return frame.withColumn("split", split).withColumn("label_index", index[F.col("label")])


def _require_every_class_in_every_split(
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

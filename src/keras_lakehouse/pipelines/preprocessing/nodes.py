"""Preprocessing nodes: leakage-free splits, decoded images, a train-only vocabulary.

Spark does the work; the driver only ever sees small aggregates (class counts per split, the
vocabulary's token counts, the label map, how many rows silver lacks).

Silver grows by MERGE: ``decode_images`` and ``vectorize_texts`` compare this run's rows with
silver as the last run left it and return only the rows it lacks or holds stale (another split,
label index, image size or vectorizer), so unchanged rows are neither recomputed nor rewritten.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.images import resize_rgb
from keras_lakehouse.params import (
    ImagePreprocessingParams,
    SplitParams,
    TextPreprocessingParams,
)
from keras_lakehouse.pipelines.preprocessing.silver import (
    IMAGES_SILVER_CHECKED,
    TEXTS_SILVER_CHECKED,
    fit_on_train,
    log_incremental,
    rows_silver_lacks,
    vectorizer_fingerprint,
)
from keras_lakehouse.pipelines.preprocessing.splits import (
    build_label_map,
    require_every_class_in_every_split,
    with_split_and_index,
)
from keras_lakehouse.platform.spark import tasks_for_rows

logger = logging.getLogger(__name__)


# Texts one vectorizing task takes: each task builds the Keras vectorizer, and a fresh Python
# worker imports TensorFlow for it (~8 CPU-seconds), so a small increment is one task.
ROWS_PER_VECTORIZING_TASK = 20_000

IMAGES_SILVER_COLUMNS = ("key", "label", "label_index", "split", "image", "image_size")
TEXTS_SILVER_COLUMNS = ("id", "text", "label", "label_index", "split", "text_sha256")
# What makes a silver row stale: the same key with another value in one of these columns is
# recomputed (a new seed, split, label list, image size or vocabulary), not kept.


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
    frame = with_split_and_index(images_bronze, "key", seed, proportions, label_map)
    require_every_class_in_every_split(frame, "images_bronze", label_map)
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
    frame = with_split_and_index(texts_bronze, "text_sha256", seed, proportions, label_map)
    require_every_class_in_every_split(frame, "texts_bronze", label_map)
    return frame, label_map


def decode_images(
    images_split: DataFrame,
    images_silver_known: DataFrame | None,
    settings: ImagePreprocessingParams,
) -> DataFrame:
    """Decode the images silver lacks, as RGB resized to ``image_size``, stored as uint8 HWC bytes.

    Images already in silver with the same label, split and size are not decoded again; the
    returned rows are MERGEd on ``key`` (new keys inserted, stale ones replaced).

    Args:
        images_split: The output of ``split_images``.
        images_silver_known: ``images_silver`` as the last run left it; ``None`` before the first.
        settings: The ``preprocessing.images`` parameters.

    Returns:
        The ``images_silver`` rows to MERGE.

    Raises:
        ValueError: When ``images_silver_known`` lacks a column this comparison needs.
    """
    size, max_pixels = settings.image_size, settings.max_pixels
    rows = images_split.withColumn("image_size", F.lit(size))
    table = "images_silver"
    rows, todo, total = rows_silver_lacks(
        rows, images_silver_known, "key", IMAGES_SILVER_CHECKED, table
    )
    log_incremental(table, "decoding", todo, total)

    @F.pandas_udf(T.BinaryType())
    def to_pixels(content: pd.Series) -> pd.Series:
        return content.map(lambda value: resize_rgb(bytes(value), size, max_pixels))

    return rows.select(
        "key", "label", "label_index", "split", to_pixels("content").alias("image"), "image_size"
    )


def fit_vocabulary(
    texts_split: DataFrame, vocabulary_saved: list[str] | None, settings: TextPreprocessingParams
) -> list[str]:
    """The vocabulary this run vectorizes with, per ``vocabulary_policy``.

    ``refit`` (and ``keep`` before any vocabulary was saved) fits it on the train split only,
    with Spark: tokens are standardised as ``keras.layers.TextVectorization`` does by default
    (ASCII-lowercase, punctuation stripped, split on whitespace), counted, and the most frequent
    kept (ties broken alphabetically, so the result is deterministic). ``keep`` returns the saved
    vocabulary unchanged: words first seen in new rows map to the OOV token.

    Args:
        texts_split: The output of ``split_texts``.
        vocabulary_saved: The latest saved vocabulary; ``None`` before the first run.
        settings: The ``preprocessing.texts`` parameters.

    Returns:
        The vocabulary, starting with the padding and OOV tokens, at most ``vocabulary_size`` long.

    Raises:
        ValueError: When ``keep`` finds a saved vocabulary longer than ``vocabulary_size``.
    """
    if settings.vocabulary_policy == "keep" and vocabulary_saved is not None:
        if len(vocabulary_saved) > settings.vocabulary_size:
            raise ValueError(
                f"vocabulary_policy 'keep' found a saved vocabulary of {len(vocabulary_saved)} "
                f"tokens, more than vocabulary_size={settings.vocabulary_size}. Set "
                "preprocessing.texts.vocabulary_policy to 'refit' to fit one at the new size."
            )
        logger.info(
            "Vocabulary kept (vocabulary_policy: keep): %d tokens; new words map to [UNK].",
            len(vocabulary_saved),
        )
        return list(vocabulary_saved)
    vocabulary = fit_on_train(texts_split, settings.vocabulary_size)
    if vocabulary_saved is not None:
        changed = "unchanged" if vocabulary == list(vocabulary_saved) else "changed"
        logger.info("Vocabulary refitted on the train split: %s since the last run.", changed)
    return vocabulary


def vectorize_texts(
    texts_split: DataFrame,
    texts_silver_known: DataFrame | None,
    vocabulary: list[str],
    settings: TextPreprocessingParams,
) -> DataFrame:
    """Token ids for the texts silver lacks, computed by the Keras layer the model ships with.

    Each row records ``vectorizer_sha256``, the fingerprint of the vocabulary and sequence length
    that computed its ids; a row computed by another vectorizer is stale. So when a refit changed
    the vocabulary, every row is recomputed; when it did not (or under ``keep``), only new rows.
    The returned rows are MERGEd on ``id``. They are computed in
    ``ceil(rows / ROWS_PER_VECTORIZING_TASK)`` Spark tasks (each builds the layer); on a first
    run, with no silver table yet, counting the rows costs one extra Spark job.

    Args:
        texts_split: The output of ``split_texts``.
        texts_silver_known: ``texts_silver`` as the last run left it; ``None`` before the first.
        vocabulary: The output of ``fit_vocabulary``.
        settings: The ``preprocessing.texts`` parameters.

    Returns:
        The ``texts_silver`` rows to MERGE, with ``token_ids`` and ``vectorizer_sha256``.

    Raises:
        ValueError: When ``texts_silver_known`` lacks a column this comparison needs.
    """
    length = settings.sequence_length
    fingerprint = vectorizer_fingerprint(vocabulary, length)
    rows = texts_split.select(*TEXTS_SILVER_COLUMNS).withColumn(
        "vectorizer_sha256", F.lit(fingerprint)
    )
    table = "texts_silver"
    rows, todo, total = rows_silver_lacks(
        rows, texts_silver_known, "id", TEXTS_SILVER_CHECKED, table
    )
    log_incremental(table, "vectorizing", todo, total)
    rows = rows.coalesce(
        tasks_for_rows(rows.count() if todo is None else todo, ROWS_PER_VECTORIZING_TASK)
    )

    @F.pandas_udf(T.ArrayType(T.IntegerType()))
    def to_ids(text: pd.Series) -> pd.Series:
        from keras_lakehouse.serving.serving_code import build_vectorizer

        layer = build_vectorizer(vocabulary, length)
        ids = np.asarray(layer(np.asarray(text.to_numpy(dtype=object), dtype=object)))
        return pd.Series(list(ids.astype(np.int32)))

    return rows.select(
        *TEXTS_SILVER_COLUMNS, to_ids("text").alias("token_ids"), "vectorizer_sha256"
    )

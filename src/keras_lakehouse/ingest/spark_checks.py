"""The checks of raw files, run by Spark: one checked row per image file or text record.

Files come from Spark's ``binaryFile`` source (``path``, ``length``, ``content``); the checks run
inside the executors (Pillow for images, the strict parser for texts), and each output row has a
``reason`` and ``detail`` (null when accepted). Ingestion (labelled training data) and batch
inference (records to score, no label) run the same checks; ``ingest.routing`` then separates
the accepted rows from the quarantined ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, fields
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.images import ImageCheck, inspect_image
from keras_lakehouse.ingest.reasons import (
    DUPLICATE_CONTENT,
    DUPLICATE_ID,
    EMPTY_FILE,
    TOO_LARGE,
    UNKNOWN_LABEL,
)
from keras_lakehouse.ingest.texts import TextRecord, parse_text_file
from keras_lakehouse.params import ImageIngestionParams, TextIngestionParams

RAW_FILE_COLUMNS = ("path", "length", "content")
HEADER_COLUMNS = ("format", "width", "height", "mode")

_IMAGE_CHECK_SCHEMA = T.StructType(
    [
        T.StructField("reason", T.StringType()),
        T.StructField("detail", T.StringType()),
        T.StructField("format", T.StringType()),
        T.StructField("width", T.IntegerType()),
        T.StructField("height", T.IntegerType()),
        T.StructField("mode", T.StringType()),
    ]
)
_TEXT_RECORD_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), nullable=False),
        T.StructField("line", T.IntegerType(), nullable=False),
        T.StructField("id", T.StringType()),
        T.StructField("text", T.StringType()),
        T.StructField("label", T.StringType()),
        T.StructField("text_sha256", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("detail", T.StringType()),
        T.StructField("raw", T.StringType()),
    ]
)


def check_image_files(
    raw_images: DataFrame, settings: ImageIngestionParams, *, labelled: bool = True
) -> DataFrame:
    """Check every raw image file; one output row per file.

    The label is the file's parent folder, the key the SHA-256 of its bytes. Files that are empty,
    too large or under an unknown label are rejected without decoding; the rest are decoded with
    Pillow in the executors. Of several files with the same bytes the first path is kept and the
    others are marked ``duplicate_content``.

    Args:
        raw_images: Rows of Spark's ``binaryFile`` source (``path``, ``length``, ``content``).
        settings: The ``ingestion.images`` parameters.
        labelled: ``False`` for images to score (batch inference): no label, so no
            ``unknown_label`` check; every other check is the same.

    Returns:
        The files with ``path``, ``label``, ``key``, ``content``, the header fields and
        ``reason``/``detail`` (null when accepted).

    Raises:
        ValueError: When ``raw_images`` lacks one of ``RAW_FILE_COLUMNS``.
    """
    require_columns(raw_images, RAW_FILE_COLUMNS, "raw_images")
    label = F.element_at(F.split("path", "/"), -2) if labelled else F.lit(None).cast("string")
    known_label = label.isin(settings.allowed_labels) if labelled else F.lit(True)
    early = (
        F.when(F.col("length") == 0, _rejection(EMPTY_FILE, F.lit("file has 0 bytes")))
        .when(
            F.col("length") > settings.max_bytes,
            _rejection(
                TOO_LARGE,
                F.format_string(f"%d bytes is above the cap of {settings.max_bytes}", "length"),
            ),
        )
        .when(
            ~known_label,
            _rejection(
                UNKNOWN_LABEL,
                F.format_string(f"folder %s is not one of {settings.allowed_labels}", label),
            ),
        )
    )
    inspect = _image_inspector(frozenset(settings.allowed_formats), settings.max_pixels)
    checked = (
        raw_images.select(*RAW_FILE_COLUMNS)
        .withColumn("label", label)
        .withColumn("key", F.sha2("content", 256))
        .withColumn("_early", early)
        .withColumn("_check", inspect(F.when(F.col("_early").isNull(), F.col("content"))))
        .select(
            "path",
            "label",
            "key",
            "content",
            *(F.col(f"_check.{name}").alias(name) for name in HEADER_COLUMNS),
            F.coalesce(F.col("_early.reason"), F.col("_check.reason")).alias("reason"),
            F.coalesce(F.col("_early.detail"), F.col("_check.detail")).alias("detail"),
        )
    )
    return _mark_duplicates(
        checked,
        key="key",
        order_by=["path"],
        reason=DUPLICATE_CONTENT,
        detail=F.concat(F.lit("same bytes as "), F.col("_first")),
        first=F.col("path"),
    )


def check_text_files(
    raw_texts: DataFrame, settings: TextIngestionParams, *, labelled: bool = True
) -> DataFrame:
    """Parse every raw text file strictly; one output row per record.

    Args:
        raw_texts: Rows of Spark's ``binaryFile`` source over the text folder.
        settings: The ``ingestion.texts`` parameters.
        labelled: ``False`` for texts to score (batch inference): ``id`` and ``text`` only.

    Returns:
        Records with ``source``, ``line``, ``id``, ``text``, ``label``, ``text_sha256``, ``raw``
        and ``reason``/``detail`` (null when accepted). Of several accepted records with one id,
        the first (by file, then line) is kept and the others are marked ``duplicate_id``.

    Raises:
        ValueError: When ``raw_texts`` lacks one of ``RAW_FILE_COLUMNS``.
    """
    require_columns(raw_texts, RAW_FILE_COLUMNS, "raw_texts")
    allowed, max_chars = frozenset(settings.allowed_labels), settings.max_text_chars
    record_fields = [field.name for field in fields(TextRecord)]

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            records = [
                asdict(record)
                for path, content in zip(batch["path"], batch["content"], strict=True)
                for record in parse_text_file(
                    path,
                    bytes(content),
                    allowed_labels=allowed,
                    max_text_chars=max_chars,
                    labelled=labelled,
                )
            ]
            yield pd.DataFrame(records, columns=record_fields)

    records = raw_texts.select("path", "content").mapInPandas(parse, _TEXT_RECORD_SCHEMA)
    return _mark_duplicates(
        records,
        key="id",
        order_by=["source", "line"],
        reason=DUPLICATE_ID,
        detail=F.concat(F.lit("id first seen at "), F.col("_first")),
        first=F.concat_ws(":", F.col("source"), F.col("line").cast("string")),
    )


def require_columns(frame: DataFrame, columns: tuple[str, ...], name: str) -> None:
    """Fail naming the columns ``frame`` lacks.

    Raises:
        ValueError: Naming the expected columns, those received and those missing.
    """
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"Expected columns {list(columns)} in {name}. Received: {frame.columns} "
            f"(missing {missing})."
        )


def _mark_duplicates(
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


def _rejection(reason: str, detail: Column) -> Column:
    return F.struct(F.lit(reason).alias("reason"), detail.alias("detail"))


def _image_inspector(allowed_formats: frozenset[str], max_pixels: int) -> Any:
    """A pandas UDF running ``inspect_image`` on each non-null ``content`` value."""
    check_fields = [field.name for field in fields(ImageCheck)]

    @F.pandas_udf(_IMAGE_CHECK_SCHEMA)
    def inspect(content: pd.Series) -> pd.DataFrame:
        checks = [
            asdict(ImageCheck())
            if value is None
            else asdict(
                inspect_image(bytes(value), allowed_formats=allowed_formats, max_pixels=max_pixels)
            )
            for value in content
        ]
        frame = pd.DataFrame(checks, columns=check_fields)
        return frame.astype({"width": "Int32", "height": "Int32"})

    return inspect

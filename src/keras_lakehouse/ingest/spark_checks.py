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
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.duplicates import mark_duplicates
from keras_lakehouse.ingest.images import ImageCheck, inspect_image
from keras_lakehouse.ingest.reasons import (
    DUPLICATE_CONTENT,
    DUPLICATE_ID,
    EMPTY_FILE,
    TOO_LARGE,
    UNKNOWN_LABEL,
    UNREADABLE,
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
        .when(F.col("read_error").isNotNull(), _rejection(UNREADABLE, F.col("read_error")))
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
        raw_images.select(*RAW_FILE_COLUMNS, _read_error(raw_images).alias("read_error"))
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
    return mark_duplicates(
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

    unread = (
        F.when(_read_error(raw_texts).isNotNull(), _rejection(UNREADABLE, _read_error(raw_texts)))
        .when(
            F.col("length") > settings.max_bytes,
            _rejection(
                TOO_LARGE,
                F.format_string(f"%d bytes is above the cap of {settings.max_bytes}", "length"),
            ),
        )
        .when(F.col("content").isNull(), _rejection(UNREADABLE, F.lit("no content")))
    )
    files = raw_texts.withColumn("_unread", unread)
    records = (
        files.filter(F.col("_unread").isNull())
        .select("path", "content")
        .mapInPandas(parse, _TEXT_RECORD_SCHEMA)
        .unionByName(_unread_text_records(files.filter(F.col("_unread").isNotNull())))
    )
    return mark_duplicates(
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


def _read_error(files: DataFrame) -> Column:
    """Why a file's bytes could not be read (``ingest.contents``); null for frames of files
    read by Spark's ``binaryFile`` source, which fails instead."""
    return F.col("read_error") if "read_error" in files.columns else F.lit(None).cast("string")


_TEXT_FIELDS_UNSET = ("id", "text", "label", "text_sha256")


def _unread_text_records(files: DataFrame) -> DataFrame:
    """One quarantine record (line 0) per text file whose bytes were not read."""
    return files.select(
        F.col("path").alias("source"),
        F.lit(0).alias("line"),
        *(
            F.lit(None).cast("string").alias(name)
            for name in ("id", "text", "label", "text_sha256")
        ),
        F.col("_unread.reason").alias("reason"),
        F.col("_unread.detail").alias("detail"),
        F.lit(None).cast("string").alias("raw"),
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

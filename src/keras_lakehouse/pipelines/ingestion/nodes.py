"""Ingestion nodes: raw files → bronze rows or quarantine rows with a reason.

Spark does the work: files are read by the ``binaryFile`` source (the catalog owns the paths),
checked inside the executors (Pillow for images, a strict parser for texts) and split into the
bronze and quarantine batches that the catalog MERGEs into Delta tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, fields
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.images import ImageCheck, inspect_image
from keras_lakehouse.ingest.texts import DUPLICATE_ID, TextRecord, parse_text_file
from keras_lakehouse.params import ImageIngestionParams, SuiteParams, TextIngestionParams
from keras_lakehouse.quality.suites import row_rules

logger = logging.getLogger(__name__)

RAW_FILE_COLUMNS = ("path", "length", "content")

EMPTY_FILE = "empty_file"
TOO_LARGE = "too_large"
UNKNOWN_LABEL = "unknown_label"
DUPLICATE_CONTENT = "duplicate_content"

HEADER_COLUMNS = ("format", "width", "height", "mode")
DETAIL_CHARS = 200  # a rule's detail quotes at most this much of the offending value
IMAGES_BRONZE_COLUMNS = ("key", "path", "label", "format", "width", "height", "mode", "content")
IMAGES_QUARANTINE_COLUMNS = ("path", "label", "key", "reason", "detail")
TEXTS_BRONZE_COLUMNS = ("id", "text", "label", "text_sha256", "source", "line")
TEXTS_QUARANTINE_COLUMNS = ("source", "line", "id", "label", "reason", "detail", "raw")

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


def check_raw_images(
    raw_images: DataFrame, params: dict[str, Any], *, labelled: bool = True
) -> DataFrame:
    """Check every raw image file; one output row per file.

    The label is the file's parent folder, the key the SHA-256 of its bytes. Files that are empty,
    too large or under an unknown label are rejected without decoding; the rest are decoded with
    Pillow in the executors. Of several files with the same bytes the first path is kept and the
    others are marked ``duplicate_content``.

    Args:
        raw_images: Rows of Spark's ``binaryFile`` source (``path``, ``length``, ``content``).
        params: The ``ingestion.images`` parameters.
        labelled: ``False`` for images to score (batch inference): no label, so no
            ``unknown_label`` check; every other check is the same.

    Returns:
        The files with ``label``, ``key``, header fields and ``reason``/``detail`` (null when
        accepted).
    """
    settings = ImageIngestionParams.model_validate(params)
    _require_columns(raw_images, RAW_FILE_COLUMNS, "raw_images")
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
        raw_images.select("path", "length", "content")
        .withColumn("label", label)
        .withColumn("key", F.sha2("content", 256))
        .withColumn("_early", early)
        .withColumn("_check", inspect(F.when(F.col("_early").isNull(), F.col("content"))))
        .select(
            "path",
            "label",
            "key",
            "content",
            *(
                F.col(f"_check.{name}").alias(name)
                for name in ("format", "width", "height", "mode")
            ),
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


def check_raw_texts(
    raw_texts: DataFrame, params: dict[str, Any], *, labelled: bool = True
) -> DataFrame:
    """Parse every raw text file strictly; one output row per record.

    Args:
        raw_texts: Rows of Spark's ``binaryFile`` source over the text folder.
        params: The ``ingestion.texts`` parameters.
        labelled: ``False`` for texts to score (batch inference): ``id`` and ``text`` only.

    Returns:
        Records with ``source``, ``line``, ``id``, ``text``, ``label``, ``text_sha256`` and
        ``reason``/``detail`` (null when accepted). Of several accepted records with one id, the
        first (by file, then line) is kept and the others are marked ``duplicate_id``.
    """
    settings = TextIngestionParams.model_validate(params)
    _require_columns(raw_texts, RAW_FILE_COLUMNS, "raw_texts")
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


def split_images(
    images_checked: DataFrame, suite: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Split checked image files into the bronze and quarantine batches, after the bronze
    suite's per-row rules (``params:images_bronze_suite``: a row that breaks one is quarantined
    with the expectation as its reason).

    Returns:
        ``images_bronze`` rows, ``images_quarantine`` rows and the run's counts.

    Raises:
        RuntimeError: When bronze + quarantine does not add up to the raw files.
    """
    ruled = apply_row_rules(images_checked, SuiteParams.model_validate(suite))
    return split_checked(ruled, "images", IMAGES_BRONZE_COLUMNS, IMAGES_QUARANTINE_COLUMNS)


def split_texts(
    texts_checked: DataFrame, suite: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Split checked text records into the bronze and quarantine batches, after the bronze
    suite's per-row rules (``params:texts_bronze_suite``).

    Returns:
        ``texts_bronze`` rows, ``texts_quarantine`` rows and the run's counts.

    Raises:
        RuntimeError: When bronze + quarantine does not add up to the raw records.
    """
    ruled = apply_row_rules(texts_checked, SuiteParams.model_validate(suite))
    return split_checked(ruled, "texts", TEXTS_BRONZE_COLUMNS, TEXTS_QUARANTINE_COLUMNS)


def apply_row_rules(checked: DataFrame, suite: SuiteParams) -> DataFrame:
    """Give each accepted row that breaks one of the suite's per-row rules (``row_rules``) the
    first broken rule as its reason, and the offending value as its detail.

    Raises:
        ValueError: When a rule names a column the checked rows do not have.
    """
    rules = row_rules(suite)
    missing = sorted({reason for reason, _ in rules if _rule_column(reason) not in checked.columns})
    if missing:
        raise ValueError(
            f"{suite.table}: per-row rules on columns the ingestion does not produce: {missing}. "
            f"Received columns: {checked.columns}"
        )
    if not rules:
        return checked
    accepted = F.col("reason").isNull()
    broken = F.coalesce(*[F.when(~passes, F.lit(reason)) for reason, passes in rules])
    value = F.coalesce(
        *[
            F.when(
                ~passes,
                F.substring(
                    F.concat(
                        F.lit(f"{_rule_column(reason)}="),
                        F.coalesce(F.col(_rule_column(reason)).cast("string"), F.lit("null")),
                    ),
                    1,
                    DETAIL_CHARS,
                ),
            )
            for reason, passes in rules
        ]
    )
    return checked.withColumn(
        "detail", F.when(accepted & broken.isNotNull(), value).otherwise(F.col("detail"))
    ).withColumn("reason", F.when(accepted, broken).otherwise(F.col("reason")))


def _rule_column(reason: str) -> str:
    return reason.split("(column=", 1)[1].rstrip(")")


def split_checked(
    checked: DataFrame,
    name: str,
    bronze_columns: tuple[str, ...],
    quarantine_columns: tuple[str, ...],
    *,
    accepted: str = "bronze",
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Filter the accepted and rejected rows from one cached check, count them and prove
    conservation (every checked row is in exactly one of the two)."""
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    stamp = F.current_timestamp().alias("ingested_at")
    bronze = checked.filter(F.col("reason").isNull()).select(*bronze_columns, stamp)
    quarantine = checked.filter(F.col("reason").isNotNull()).select(*quarantine_columns, stamp)
    raw_count, bronze_count, quarantine_count = (
        checked.count(),
        bronze.count(),
        quarantine.count(),
    )
    by_reason = {
        row["reason"]: row["count"]
        for row in checked.filter(F.col("reason").isNotNull()).groupBy("reason").count().collect()
    }
    counts = {
        "raw": raw_count,
        accepted: bronze_count,
        "quarantine": quarantine_count,
        "quarantine_by_reason": dict(sorted(by_reason.items())),
    }
    logger.info("%s ingestion counts: %s", name, counts)
    if bronze_count + quarantine_count != raw_count or sum(by_reason.values()) != quarantine_count:
        raise RuntimeError(
            f"{name}: conservation broken: {raw_count} raw records but {bronze_count} bronze + "
            f"{quarantine_count} quarantine (by reason: {by_reason})."
        )
    return bronze, quarantine, counts


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


def _require_columns(frame: DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"Expected columns {list(columns)} in {name}. Received: {frame.columns} "
            f"(missing {missing})."
        )

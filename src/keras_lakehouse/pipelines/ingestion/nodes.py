"""Ingestion nodes: new raw files → bronze rows or quarantine rows with a reason.

Spark does the work. The catalog's file stream logs the files delivered (``FileStreamDataset``:
Spark's file source locally, Auto Loader on Databricks); a run takes the files no earlier run
settled, reads their bytes (``ingest.contents``: never above the cap), checks them inside the
executors (``ingest.spark_checks``), routes them to the bronze and quarantine batches
(``ingest.routing``) that the catalog MERGEs into Delta tables, and then marks them settled.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.ingest.contents import with_content
from keras_lakehouse.ingest.duplicates import mark_known_duplicates
from keras_lakehouse.ingest.reasons import DUPLICATE_CONTENT, DUPLICATE_ID
from keras_lakehouse.ingest.routing import (
    IMAGES_BRONZE_COLUMNS,
    IMAGES_QUARANTINE_COLUMNS,
    TEXTS_BRONZE_COLUMNS,
    TEXTS_QUARANTINE_COLUMNS,
    apply_row_rules,
    route_checked,
)
from keras_lakehouse.ingest.spark_checks import check_image_files, check_text_files
from keras_lakehouse.params import ImageIngestionParams, SuiteParams, TextIngestionParams
from keras_lakehouse.quality.row_rules import row_rules


def check_raw_images(
    raw_images: DataFrame, images_bronze_known: DataFrame, settings: ImageIngestionParams
) -> tuple[DataFrame, DataFrame]:
    """Check every image file no run has settled yet (labelled by its folder); one output row
    per file. A file with the same bytes as an image already in bronze is a duplicate.

    Args:
        raw_images: The file log (``path``, ``length``, ``settled_at``; ``FileStreamDataset``).
        images_bronze_known: ``images_bronze`` as this run found it (``key``, ``path``).
        settings: The ``ingestion.images`` parameters.

    Returns:
        The checked files, ``reason``/``detail`` null when accepted (see
        ``ingest.spark_checks.check_image_files``), and this run's files (``path``), to be
        settled once routed.
    """
    batch = unsettled(raw_images)
    checked = check_image_files(with_content(batch, settings.max_bytes), settings)
    checked = mark_known_duplicates(
        checked,
        images_bronze_known,
        key="key",
        identity=["path"],
        reason=DUPLICATE_CONTENT,
        detail_prefix="same bytes as ",
    )
    return checked, batch.select("path")


def check_raw_texts(
    raw_texts: DataFrame, texts_bronze_known: DataFrame, settings: TextIngestionParams
) -> tuple[DataFrame, DataFrame]:
    """Parse every text file no run has settled yet strictly (``id,text,label``); one output row
    per record. A record whose id is already in bronze (from another line) is a duplicate.

    Args:
        raw_texts: The file log of the text folder.
        texts_bronze_known: ``texts_bronze`` as this run found it (``id``, ``source``, ``line``).
        settings: The ``ingestion.texts`` parameters.

    Returns:
        The checked records (see ``ingest.spark_checks.check_text_files``) and this run's files.
    """
    batch = unsettled(raw_texts)
    checked = check_text_files(with_content(batch, settings.max_bytes), settings)
    checked = mark_known_duplicates(
        checked,
        texts_bronze_known,
        key="id",
        identity=["source", "line"],
        reason=DUPLICATE_ID,
        detail_prefix="id first seen at ",
    )
    return checked, batch.select("path")


def unsettled(file_log: DataFrame) -> DataFrame:
    """The files of the log that no run has settled: new ones, and those of a run that died
    before it settled them (their MERGEs are idempotent, so they are simply done again)."""
    return file_log.filter(F.col("settled_at").isNull()).select(
        "path", "modificationTime", "length"
    )


def settle_files(batch: DataFrame, counts: dict[str, Any]) -> DataFrame:
    """This run's files, to be marked settled in the file log. Runs after the routing node has
    saved bronze, quarantine and the counts (its ``counts`` input orders it so): a run that dies
    before this leaves the files unsettled, and the next run takes them again.

    Args:
        batch: This run's files (``path``), from the check node.
        counts: The routing node's counts (checked to cover the batch's files).

    Returns:
        ``batch``, saved to the file log as settled.
    """
    del counts  # an input for the order of the nodes only
    return batch


def route_images(
    images_checked: DataFrame, suite: SuiteParams
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Route checked image files to bronze or to quarantine, after the bronze suite's per-row
    rules: a row that breaks one is quarantined with the expectation as its reason.

    Args:
        images_checked: The output of ``check_raw_images``.
        suite: The ``images_bronze_suite`` parameters.

    Returns:
        ``images_bronze`` rows, ``images_quarantine`` rows and the run's counts.

    Raises:
        RuntimeError: When bronze + quarantine does not add up to the raw files.
    """
    ruled = apply_row_rules(images_checked, row_rules(suite), table=suite.table)
    return route_checked(ruled, "images", IMAGES_BRONZE_COLUMNS, IMAGES_QUARANTINE_COLUMNS)


def route_texts(
    texts_checked: DataFrame, suite: SuiteParams
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Route checked text records to bronze or to quarantine, after the bronze suite's per-row
    rules.

    Args:
        texts_checked: The output of ``check_raw_texts``.
        suite: The ``texts_bronze_suite`` parameters.

    Returns:
        ``texts_bronze`` rows, ``texts_quarantine`` rows and the run's counts.

    Raises:
        RuntimeError: When bronze + quarantine does not add up to the raw records.
    """
    ruled = apply_row_rules(texts_checked, row_rules(suite), table=suite.table)
    return route_checked(ruled, "texts", TEXTS_BRONZE_COLUMNS, TEXTS_QUARANTINE_COLUMNS)

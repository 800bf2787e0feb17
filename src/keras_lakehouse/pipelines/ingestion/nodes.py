"""Ingestion nodes: raw files → bronze rows or quarantine rows with a reason.

Spark does the work: files are read by the ``binaryFile`` source (the catalog owns the paths),
checked inside the executors (``ingest.spark_checks``) and routed to the bronze and quarantine
batches (``ingest.routing``) that the catalog MERGEs into Delta tables.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame

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


def check_raw_images(raw_images: DataFrame, settings: ImageIngestionParams) -> DataFrame:
    """Check every raw image file (labelled by its folder); one output row per file.

    Args:
        raw_images: Rows of Spark's ``binaryFile`` source (``path``, ``length``, ``content``).
        settings: The ``ingestion.images`` parameters.

    Returns:
        The checked files, ``reason``/``detail`` null when accepted (see
        ``ingest.spark_checks.check_image_files``).
    """
    return check_image_files(raw_images, settings)


def check_raw_texts(raw_texts: DataFrame, settings: TextIngestionParams) -> DataFrame:
    """Parse every raw text file strictly (``id,text,label``); one output row per record.

    Args:
        raw_texts: Rows of Spark's ``binaryFile`` source over the text folder.
        settings: The ``ingestion.texts`` parameters.

    Returns:
        The checked records, ``reason``/``detail`` null when accepted (see
        ``ingest.spark_checks.check_text_files``).
    """
    return check_text_files(raw_texts, settings)


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

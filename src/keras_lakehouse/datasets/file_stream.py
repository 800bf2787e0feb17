"""Delivered files as a log that grows: a checkpointed file stream, read up to now, each run.

Spark's file source (``binaryFile``) locally, Auto Loader (``cloudFiles``) on Databricks: the
catalog says which (``source``). The stream records each new file's metadata (never its bytes)
in a Delta *file log* under ``checkpoint``; a node later marks the files it has settled (every
file in bronze or quarantine) by saving them back to the log. A run therefore works on the files
the log holds unsettled: the new ones, and those of a run that died before settling them.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Literal

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.datasets.binary_files import (
    listed_files,
    require_raw_folder,
    warn_about_listing,
)
from keras_lakehouse.datasets.delta_merge import (
    MERGE_ATTEMPTS,
    MERGE_BACKOFF_SECONDS,
    concurrent_conflict,
    concurrent_stream,
    merge_with_retries,
)
from keras_lakehouse.platform.redaction import redact_uri
from keras_lakehouse.platform.spark import active_session

logger = logging.getLogger(__name__)

Source = Literal["binaryFile", "cloudFiles"]
SOURCES = ("binaryFile", "cloudFiles")
# What Spark's binaryFile source delivers; the stream selects the metadata only, so the files'
# bytes are not read (the source reads ``content`` only when a query uses it).
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"
LOG_SCHEMA = (
    "path string, modificationTime timestamp, length long, discovered_at timestamp, "
    "settled_at timestamp"
)
# Spark's file source ignores files older than the newest seen by more than `maxFileAge` (7
# days by default): a copy that keeps old modification times (tar, rsync -a) would be skipped.
MAX_FILE_AGE = "36500d"


class FileStreamDataset(AbstractDataset[DataFrame, DataFrame]):
    """The file log of a raw folder, brought up to date by a file stream at each load.

    ``load()`` runs the stream with ``trigger(availableNow=True)``: it records the files that
    arrived since the last run (path, modification time, length) in the log and stops. Zero-byte
    files, which Spark's ``binaryFile`` source skips without a word, are found by listing the
    folder. It returns the whole log, ``settled_at`` null while no run has settled a file.
    ``save(frame)`` marks the frame's ``path`` values settled. Both are idempotent.

    A file rewritten under a path already logged is not read again (the file source and Auto
    Loader key files by path): the load warns, naming it. Example catalog entry::

        raw_images:
          type: keras_lakehouse.datasets.FileStreamDataset
          filepath: data/01_raw/images
          checkpoint: data/02_intermediate/_file_logs/raw_images
          source: binaryFile   # cloudFiles on Databricks
    """

    def __init__(
        self,
        *,
        filepath: str,
        checkpoint: str,
        source: Source = "binaryFile",
        options: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Check the configuration when the catalog is built.

        Args:
            filepath: The raw folder (local or a Unity Catalog Volume).
            checkpoint: A folder of its own: the stream's checkpoint and the log.
            source: ``binaryFile`` (Spark's file source) or ``cloudFiles`` (Auto Loader).
            options: Extra reader options (e.g. ``cloudFiles.useNotifications``).
            metadata: Kedro's free-form metadata.

        Raises:
            DatasetError: When ``source`` is unknown or ``checkpoint`` lies inside ``filepath``.
        """
        if source not in SOURCES:
            raise DatasetError(f"source must be one of {SOURCES}. Received: source={source!r}")
        self._filepath = filepath.rstrip("/")
        # Kedro makes `filepath` absolute, not this key; the JVM does not share Python's cwd.
        self._checkpoint = _absolute(checkpoint.rstrip("/"))
        if f"{self._checkpoint}/".startswith(f"{self._filepath}/"):
            raise DatasetError(
                f"checkpoint {checkpoint!r} lies inside the raw folder {filepath!r}: the stream "
                "would read its own state. Put it next to the tables (02_intermediate)."
            )
        self._source = source
        self._options = dict(options or {})
        self._name = redact_uri(self._filepath)
        self._streamed = 0  # files the stream logged during the current load
        self.metadata = metadata

    def load(self) -> DataFrame:
        """Record the newly arrived files in the log and return the log, pinned to the version
        just written: rows ``path, modificationTime, length, discovered_at, settled_at``.

        Raises:
            DatasetError: When the raw folder does not exist.
        """
        require_raw_folder(self._filepath)
        spark = active_session(f"Reading the raw files of {self._filepath!r}")
        logger.info("%s: looking for new files (%s stream)", self._name, self._source)
        self._streamed = 0
        self._run_stream(spark)
        logged = dict(self._read_log(spark).select("path", "length").collect())
        listing = listed_files(spark, self._filepath)
        # What the stream does not deliver is logged from the listing: zero-byte files (the file
        # source skips them) and any other file it passed over, so none is dropped in silence.
        missed = [(path, when, size) for path, when, size in listing if path not in logged]
        if missed:
            frame = spark.createDataFrame(
                missed, "path string, modificationTime timestamp, length long"
            )
            self._merge_new(spark, frame)
        warn_about_listing(
            self._name,
            passed_over=[path for path, _, size in missed if size],
            rewritten=[path for path, _, size in listing if logged.get(path, size) != size],
        )
        log = self._read_log(spark)
        logger.info(
            "%s: %d new file(s), %d to check",
            self._name,
            self._streamed + len(missed),
            log.filter(F.col("settled_at").isNull()).count(),
        )
        return log

    def save(self, data: DataFrame) -> None:
        """Mark the files in ``data`` (a ``path`` column) settled; unknown paths are an error.

        Raises:
            DatasetError: When ``data`` has no ``path`` column or names files the log lacks.
        """
        if "path" not in data.columns:
            raise DatasetError(
                f"Saving to {self} marks files settled: expected a 'path' column. "
                f"Received columns: {data.columns}"
            )
        spark = active_session(f"Settling the raw files of {self._filepath!r}")
        settled = data.select("path").distinct()
        log = self._read_log(spark)
        unknown = settled.join(log, "path", "left_anti").limit(5).collect()
        if unknown:
            raise DatasetError(
                f"{self}: cannot settle files the log does not hold: "
                f"{[redact_uri(row.path) for row in unknown]}"
            )
        now = log.filter(F.col("settled_at").isNull()).join(settled, "path", "left_semi")
        merge_with_retries(
            self._log_table,
            now.withColumn("settled_at", F.current_timestamp()),
            merge_keys=["path"],
            when_matched="update",
            location=self._log_path,
        )

    def start_over(self) -> None:
        """Forget every file: remove the stream's checkpoint and the log (a full refresh)."""
        protocol, path = get_protocol_and_path(self._checkpoint)
        filesystem = fsspec.filesystem(protocol)
        if filesystem.exists(path):
            filesystem.rm(path, recursive=True)
        logger.warning("%s: file log and checkpoint removed (full refresh)", self._name)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._name, "checkpoint": redact_uri(self._checkpoint)}

    @property
    def _log_path(self) -> str:
        return f"{self._checkpoint}/files"

    def new_files(self, spark: SparkSession) -> DataFrame:
        """The stream of files as the configured source delivers them (metadata columns)."""
        if self._source == "cloudFiles":
            reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", "binaryFile")
        else:
            reader = (
                spark.readStream.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .option("maxFileAge", MAX_FILE_AGE)
            )
        for key, value in self._options.items():
            reader = reader.option(key, value)
        try:
            files = reader.schema(BINARY_FILE_SCHEMA).load(self._filepath)
        except Exception as error:
            if self._source == "cloudFiles" and "cloudFiles" in str(error):
                raise DatasetError(
                    "Auto Loader (source: cloudFiles) exists only on Databricks: elsewhere, set "
                    "globals file_source: binaryFile (KL_FILE_SOURCE=binaryFile)."
                ) from error
            raise
        return files.select("path", "modificationTime", "length")

    def _run_stream(self, spark: SparkSession) -> None:
        """Run the stream until it has caught up, appending each batch's files to the log."""
        files = self.new_files(spark)
        try:
            self._stream_with_retries(files)
        finally:  # the stream's batches ran in a clone of the session: make ours active again
            SparkSession._activeSession = spark
            if getattr(spark, "_jvm", None) is not None:
                spark._jvm.SparkSession.setActiveSession(spark._jsparkSession)

    def _stream_with_retries(self, files: DataFrame) -> None:
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                (
                    files.writeStream.foreachBatch(self._append_batch)
                    .option("checkpointLocation", f"{self._checkpoint}/stream")
                    .trigger(availableNow=True)
                    .start()
                    .awaitTermination()
                )
                return
            except Exception as error:
                if not concurrent_stream(error) or attempt == MERGE_ATTEMPTS:
                    raise
                message = (
                    "%s: another run's stream committed first (attempt %d of %d): catching up."
                )
                logger.warning(message, self._name, attempt, MERGE_ATTEMPTS)
                time.sleep(MERGE_BACKOFF_SECONDS * attempt)

    def _append_batch(self, batch: DataFrame, _batch_id: int) -> None:
        self._streamed += batch.count()  # metadata rows: counting them reads no file
        self._merge_new(batch.sparkSession, batch)

    def _merge_new(self, spark: SparkSession, files: DataFrame) -> None:
        """Insert the files the log lacks (by path); create the log on the first batch."""
        rows = files.dropDuplicates(["path"]).select(
            "path",
            "modificationTime",
            "length",
            F.current_timestamp().alias("discovered_at"),
            F.lit(None).cast("timestamp").alias("settled_at"),
        )
        if self._log_version(spark) is None:
            try:
                spark.createDataFrame([], LOG_SCHEMA).write.format("delta").mode("ignore").save(
                    self._log_path
                )
            except Exception as error:  # another run created it at the same moment: merge into it
                if concurrent_conflict(error) is None:
                    raise
        merge_with_retries(
            self._log_table,
            rows,
            merge_keys=["path"],
            when_matched="ignore",
            location=self._log_path,
        )

    def _log_table(self) -> Any:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(active_session("The file log"), self._log_path)

    def _read_log(self, spark: SparkSession) -> DataFrame:
        version = self._log_version(spark)
        if version is None:
            return spark.createDataFrame([], LOG_SCHEMA)
        return spark.read.format("delta").option("versionAsOf", version).load(self._log_path)

    def _log_version(self, spark: SparkSession) -> int | None:
        from delta.tables import DeltaTable

        try:  # forPath reads the log anew (isDeltaTable may answer from a stale cache)
            table = DeltaTable.forPath(spark, self._log_path)
        except AnalysisException:
            return None
        return int(table.history(1).first()["version"])


def _absolute(path: str) -> str:
    return path if ":" in path.split("/", 1)[0] else os.path.abspath(path)

"""A Delta table as a Kedro dataset: loads a Spark DataFrame, saves by overwrite or MERGE.

The MERGE and its retries on concurrent commits are in ``delta_merge``; which version a load
reads (pinned, validated by a verdict, or current) is recorded by ``delta_versions``.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any, Literal

from kedro.io.core import AbstractDataset, DatasetError
from pyspark.sql import DataFrame, SparkSession

from keras_lakehouse.datasets.delta_merge import WHEN_MATCHED, WhenMatched, merge_with_retries
from keras_lakehouse.datasets.delta_versions import remember_loaded_version, validated_version
from keras_lakehouse.platform.redaction import redact_uri
from keras_lakehouse.platform.spark import active_session, session_conf

logger = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append", "merge"]
WRITE_MODES = ("overwrite", "append", "merge")
COMPRESSION_CONF = "spark.sql.parquet.compression.codec"
MAX_RECORDS_CONF = "spark.sql.files.maxRecordsPerFile"


class DeltaTableDataset(AbstractDataset[DataFrame, DataFrame]):
    """A Delta table at a path (local, DBFS, Unity Catalog Volume) or registered by name.

    Saving with ``write_mode: merge`` upserts on ``merge_keys`` (``when_matched: update``) or
    inserts only the keys the table lacks (``when_matched: ignore``), so a re-run never
    duplicates rows. The first save creates the table. A Delta commit is atomic: a save that
    fails mid-way leaves the table at its previous version.

    Example catalog entry::

        images_bronze:
          type: keras_lakehouse.datasets.DeltaTableDataset
          filepath: data/02_intermediate/images_bronze
          write_mode: merge
          merge_keys: [key]
          when_matched: ignore
          compression: uncompressed

    Every load reads one version: the one pinned (``version``), the one a data-quality verdict
    validated (``validated_by: data/08_reporting/data_quality/images_bronze_gate.json``; the load
    refuses a failed or missing verdict), or the current one when the load starts.
    ``delta_version_of(frame)`` tells which.
    """

    def __init__(
        self,
        *,
        filepath: str | None = None,
        table: str | None = None,
        write_mode: WriteMode = "overwrite",
        merge_keys: list[str] | None = None,
        when_matched: WhenMatched = "update",
        partition_by: list[str] | None = None,
        compression: str | None = None,
        max_records_per_file: int | None = None,
        version: int | None = None,
        validated_by: str | None = None,
        empty_schema: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Check the configuration when the catalog is built, not when a node runs.

        ``empty_schema`` (DDL: ``"key string, path string"``): a load of a table not written yet
        (or after ``start_over``) returns an empty frame of those columns. ``max_records_per_file``
        bounds each Parquet file (and each row group a reader holds): for tables fed to training.

        Raises:
            DatasetError: When the options contradict each other or name an unknown mode.
        """
        if (filepath is None) == (table is None):
            raise DatasetError(
                "DeltaTableDataset needs exactly one of 'filepath' or 'table'. "
                f"Received: filepath={filepath!r}, table={table!r}"
            )
        if write_mode not in WRITE_MODES:
            raise DatasetError(
                f"write_mode must be one of {WRITE_MODES}. Received: write_mode={write_mode!r}"
            )
        if write_mode == "merge" and not merge_keys:
            raise DatasetError(
                "write_mode 'merge' needs 'merge_keys' (the columns that identify a row). "
                f"Received: merge_keys={merge_keys!r}"
            )
        if when_matched not in WHEN_MATCHED:
            raise DatasetError(
                f"when_matched must be one of {WHEN_MATCHED}. Received: {when_matched!r}"
            )
        self._filepath = str(filepath) if filepath is not None else None
        self._table = table
        self._write_mode = write_mode
        self._merge_keys = list(merge_keys or [])
        self._when_matched = when_matched
        self._partition_by = list(partition_by or [])
        self._compression = compression
        self._max_records = str(max_records_per_file) if max_records_per_file else None
        self._version = version
        self._validated_by = validated_by
        self._empty_schema = empty_schema
        self._forgotten = False  # start_over: reads as not yet written
        self.metadata = metadata

    # -- Kedro API -----------------------------------------------------------------------------
    def load(self) -> DataFrame:
        """Read the table at one version (see the class docstring).

        Raises:
            DatasetError: When ``validated_by`` names a missing, unreadable or failed verdict.
        """
        version = self._version
        if self._validated_by is not None:
            version = validated_version(self._validated_by, self.location)
        elif version is None:
            version = None if self._forgotten else self.version_number()
            if version is None and self._empty_schema is not None:
                return _spark().createDataFrame([], self._empty_schema)
        reader = _spark().read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        frame = (
            reader.table(self._table) if self._table is not None else reader.load(self._filepath)
        )
        if version is not None:
            remember_loaded_version(frame, version)
        return frame

    def save(self, data: DataFrame) -> None:
        """Write ``data``; MERGE when configured, creating the table on the first save.

        Raises:
            DatasetError: When the dataset is pinned to a version, ``data`` lacks a merge key,
                or a folder at ``filepath`` holds files but no Delta log.
            ConcurrentCommitError: When every MERGE attempt lost to another writer's commit.
        """
        if self._version is not None or self._validated_by is not None:
            raise DatasetError(f"{self} reads a pinned version: it is read-only.")
        missing = [key for key in self._merge_keys if key not in data.columns]
        if missing:
            raise DatasetError(
                f"merge_keys {missing} are not columns of the data saved to {self}. "
                f"Received columns: {data.columns}"
            )
        with (
            session_conf(_spark(), COMPRESSION_CONF, self._compression),
            session_conf(_spark(), MAX_RECORDS_CONF, self._max_records),
        ):
            if self._write_mode == "merge":
                self._create_or_merge(data)
            else:
                mode = "append" if self._write_mode == "append" else "overwrite"
                self._write(data, mode=mode)

    def _create_or_merge(self, data: DataFrame) -> None:
        """MERGE into the table; create it when there is none. Never overwrites on doubt: a
        folder with files but no Delta log is an error, and a table another run created after
        the existence check (the first-run race) is merged into, not replaced."""
        if self._exists():
            self._merge(data)
            return
        self._refuse_files_without_log()
        try:
            self._write(data, mode="errorifexists")
        except Exception as error:
            if not self._exists():
                raise
            logger.info("%s was created by another run meanwhile: merging. (%s)", self, error)
            self._merge(data)

    def _refuse_files_without_log(self) -> None:
        if self._filepath is None:
            return
        import fsspec
        from kedro.io.core import get_protocol_and_path

        protocol, path = get_protocol_and_path(self._filepath)
        filesystem = fsspec.filesystem(protocol)
        entries = filesystem.ls(path) if filesystem.exists(path) else []
        if entries and not any(PurePosixPath(entry).name == "_delta_log" for entry in entries):
            raise DatasetError(
                f"{redact_uri(self._filepath)} holds files but no Delta log (_delta_log "
                "missing or unreadable): refusing to overwrite it. Restore the log, or move the "
                "folder away to start the table afresh."
            )

    def _exists(self) -> bool:
        spark = _spark()
        if self._table is not None:
            return spark.catalog.tableExists(self._table)
        from delta.tables import DeltaTable
        from pyspark.errors import AnalysisException

        if DeltaTable.isDeltaTable(spark, self._filepath):
            return True
        # isDeltaTable answers from the session's cached snapshot: a process that has just lost
        # the race to create the table still reads "no table" there. forPath reads the log anew.
        try:
            DeltaTable.forPath(spark, self._filepath)
        except AnalysisException:
            return False
        return True

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": None if self._filepath is None else redact_uri(self._filepath),
            "table": self._table,
            "write_mode": self._write_mode,
            "merge_keys": self._merge_keys,
            "when_matched": self._when_matched,
            "version": self._version,
            "validated_by": self._validated_by,
        }

    # -- helpers -------------------------------------------------------------------------------
    def _write(self, data: DataFrame, *, mode: str) -> None:
        writer = data.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        if self._table is not None:
            writer.saveAsTable(self._table)
        else:
            writer.save(self._filepath)

    def _merge(self, data: DataFrame) -> None:
        """MERGE ``data`` on the merge keys, retried on concurrent commits (``delta_merge``)."""
        merge_with_retries(
            self._delta_table,
            data,
            merge_keys=self._merge_keys,
            when_matched=self._when_matched,
            location=self.location,
        )

    @property
    def can_start_over(self) -> bool:
        """Whether ``start_over`` works: the entry has an ``empty_schema``."""
        return self._empty_schema is not None

    def start_over(self) -> None:
        """Read as a table not written yet (a full refresh); needs ``empty_schema``."""
        if self._empty_schema is None:
            raise DatasetError(f"{self} has no empty_schema: it cannot read as not yet written.")
        self._forgotten = True

    def replace_on_save(self) -> bool:
        """Overwrite, not MERGE, from now on (a full refresh; the history keeps the past)."""
        if self._write_mode != "merge":
            return False
        self._write_mode = "overwrite"
        return True

    def version_number(self) -> int | None:
        """The table's current version, or ``None`` when it does not exist yet."""
        if not self._exists():
            return None
        return int(self._delta_table().history(1).select("version").first()[0])

    def at_version(self, version: int) -> DeltaTableDataset:
        """The same table pinned at ``version`` (read-only)."""
        return DeltaTableDataset(filepath=self._filepath, table=self._table, version=version)

    def _delta_table(self) -> Any:
        from delta.tables import DeltaTable

        spark = _spark()
        if self._table is not None:
            return DeltaTable.forName(spark, self._table)
        return DeltaTable.forPath(spark, self._filepath)

    @property
    def location(self) -> str:
        """The table's path or name, for messages and lineage."""
        return self._table or str(PurePosixPath(self._filepath))


def _spark() -> SparkSession:
    return active_session("A Delta table dataset")

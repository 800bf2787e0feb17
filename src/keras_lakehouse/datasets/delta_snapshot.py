"""A Delta table version as the list of its Parquet files, for readers that bypass Spark.

``DeltaSnapshot`` is what the training and evaluation loaders read (and what MLflow records as
lineage); ``DeltaSnapshotDataset`` pins a table's current version and builds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from keras_lakehouse.datasets.delta_table import DeltaTableDataset
from keras_lakehouse.platform.redaction import redact_uri


@dataclass(frozen=True)
class DeltaSnapshot:
    """The Parquet files of one Delta table version (the lineage MLflow records)."""

    location: str
    version: int
    files: tuple[str, ...]
    num_rows: int
    split_counts: dict[str, int] = field(default_factory=dict)


def local_path(uri: str) -> str:
    """A file URI as Spark spells it, as a path pyarrow can open.

    Args:
        uri: E.g. ``file:/a/b`` or ``dbfs:/Volumes/..``.

    Returns:
        ``/a/b`` or ``/Volumes/..``; any other URI unchanged.
    """
    for prefix in ("file://", "file:", "dbfs:"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri


class DeltaSnapshotDataset(AbstractDataset[None, DeltaSnapshot]):
    """A Delta table pinned at its current version, as the list of that version's Parquet files.

    Only table metadata goes through Spark (the log and the file list); the rows are read by the
    training loader straight from the files. Use it as the read side of a transcoded dataset
    (``images_silver@snapshot`` beside ``images_silver@spark``). Read-only.
    """

    def __init__(
        self,
        *,
        filepath: str | None = None,
        table: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Point at the table by path or by name, like ``DeltaTableDataset``."""
        self._delta = DeltaTableDataset(filepath=filepath, table=table)
        self.metadata = metadata

    def load(self) -> DeltaSnapshot:
        """Pin the current version, list its files and count rows per split (from the files).

        Raises:
            DatasetError: When the table does not exist, or its files hold rows the version
                deleted (deletion vectors, which the file loader cannot apply).
        """
        import pyarrow.parquet as pq

        version = self._delta.version_number()
        if version is None:
            raise DatasetError(f"Delta table {self._delta.location} does not exist yet.")
        frame = self._delta.at_version(version).load()
        files = tuple(sorted(frame.inputFiles()))  # from the Delta log: no data moves
        num_rows = frame.count()
        paths = [local_path(name) for name in files]
        in_files = sum(pq.ParquetFile(path).metadata.num_rows for path in paths)
        if in_files != num_rows:
            raise DatasetError(
                f"Delta table {self._delta.location} v{version} has {num_rows} rows but its "
                f"files hold {in_files}: deleted rows (deletion vectors) are not supported by "
                "the file loader. Rewrite the table (overwrite, or REORG ... APPLY (PURGE))."
            )
        split_counts = _split_counts(paths) if "split" in frame.columns else {}
        return DeltaSnapshot(
            location=self._delta.location,
            version=version,
            files=files,
            num_rows=num_rows,
            split_counts=dict(sorted(split_counts.items())),
        )

    def save(self, data: None) -> None:
        """Snapshots are read-only: write through the ``@spark`` side.

        Raises:
            DatasetError: Always.
        """
        raise DatasetError(f"{self} is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"location": redact_uri(self._delta.location)}


def _split_counts(paths: list[str]) -> dict[str, int]:
    """Rows per split, reading only the ``split`` column of each file."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    for path in paths:
        column = pq.read_table(path, columns=["split"]).column("split")
        for item in pc.value_counts(column).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts

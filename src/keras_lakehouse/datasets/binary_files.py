"""Raw files as a Spark DataFrame: Spark's ``binaryFile`` source, without its blind spot."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path
from pyspark.sql import DataFrame

from keras_lakehouse.platform.redaction import redact_uri
from keras_lakehouse.platform.spark import active_session

logger = logging.getLogger(__name__)
SHOWN = 5  # paths a warning names


class BinaryFilesDataset(AbstractDataset[None, DataFrame]):
    """Every file under a folder as rows ``path, modificationTime, length, content``.

    Spark's ``binaryFile`` source reads the files in the executors, but it skips zero-byte files
    without a word. A zero-byte upload is a record that must be quarantined, so the folder is
    also listed and the empty files are added as rows with empty ``content``. Like Spark, names
    starting with ``.`` or ``_`` are ignored. Read-only.

    Example catalog entry::

        raw_images:
          type: keras_lakehouse.datasets.BinaryFilesDataset
          filepath: data/01_raw/images
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        """Keep the folder's path (local, DBFS or Unity Catalog Volume)."""
        self._filepath = filepath
        self.metadata = metadata

    def load(self) -> DataFrame:
        """Read the folder recursively; raises ``DatasetError`` when it does not exist."""
        require_raw_folder(self._filepath)
        spark = active_session(f"Reading the raw files of {self._filepath!r}")
        frame = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(self._filepath)
        )
        empty = [row for row in listed_files(spark, self._filepath) if row[2] == 0]
        if empty:
            logger.info("%d zero-byte file(s) under %s", len(empty), redact_uri(self._filepath))
            frame = frame.unionByName(
                spark.createDataFrame([(*row, b"") for row in empty], frame.schema)
            )
        return frame

    def save(self, data: None) -> None:
        """Raw files are written by whoever delivers them, never by a pipeline."""
        raise DatasetError(f"{self} is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": redact_uri(self._filepath)}


def require_raw_folder(filepath: str) -> None:
    """Raise ``DatasetError`` naming ``filepath`` when that raw folder does not exist."""
    protocol, path = get_protocol_and_path(filepath)
    if not fsspec.filesystem(protocol).isdir(path.rstrip("/")):
        raise DatasetError(
            f"Raw folder {filepath!r} does not exist. Put files there or run "
            "`python -m keras_lakehouse.sample_data`."
        )


def listed_files(spark: Any, folder: str) -> list[tuple[str, datetime, int]]:
    """Every file under ``folder`` (not hidden, as Spark sees it) as ``(path, mtime, size)``,
    the path spelled as Spark's file source spells it. Metadata only: no file is opened."""
    protocol, path = get_protocol_and_path(folder)
    path = path.rstrip("/")
    root = qualified_path(spark, folder)
    return [
        (f"{root}/{PurePosixPath(name).relative_to(path)}", _mtime(info), int(info.get("size", 0)))
        for name, info in fsspec.filesystem(protocol).find(path, detail=True).items()
        if not _hidden(name, path)
    ]


def qualified_path(spark: Any, folder: str) -> str:
    """``folder`` as Spark's file source spells the paths under it: Hadoop's qualified path
    (``file:/abs/path`` locally, ``dbfs:/Volumes/...`` for a Volume on Databricks), so a zero-byte
    file's key is spelled like every other file's. Without a JVM (Spark Connect) the Volume and
    local spellings are rebuilt by hand."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        protocol, path = get_protocol_and_path(folder)
        scheme = "dbfs" if path.startswith("/Volumes/") else protocol
        return f"{scheme}:{path}" if path.startswith("/") else f"{scheme}://{path}"
    hadoop_path = jvm.org.apache.hadoop.fs.Path(folder)
    filesystem = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())
    return str(filesystem.makeQualified(hadoop_path).toString()).rstrip("/")


def _hidden(name: str, root: str) -> bool:
    relative = PurePosixPath(name).relative_to(PurePosixPath(root))
    return any(part.startswith((".", "_")) for part in relative.parts)


def _mtime(info: dict[str, Any]) -> datetime:
    stamp = info.get("mtime") or info.get("created") or 0
    return datetime.fromtimestamp(float(stamp), tz=UTC)


def warn_about_listing(name: str, *, passed_over: list[str], rewritten: list[str]) -> None:
    """Warn, naming a few, about files a file stream did not deliver (they were logged from the
    listing instead) and files rewritten under a path already logged (they are not read again)."""
    if passed_over:
        logger.warning(
            "%s: %d file(s) not delivered by the stream (arrived after it ran, or passed over) "
            "were logged from the folder listing: %s",
            name,
            len(passed_over),
            [redact_uri(path) for path in sorted(passed_over)[:SHOWN]],
        )
    if rewritten:
        logger.warning(
            "%s: %d file(s) were rewritten under a path already ingested; they are not read "
            "again (deliver changed files under new names, or run a full refresh: "
            "docs/data-flow.md): %s",
            name,
            len(rewritten),
            [redact_uri(path) for path in sorted(rewritten)[:SHOWN]],
        )

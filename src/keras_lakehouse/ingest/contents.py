"""The bytes of the files a run works on, read by the executors, never more than a cap.

The file log holds metadata only. A file's bytes are read here, for the files of this run alone,
and only when its logged length is within the cap: a larger file is quarantined from its length
and never opened. A file that grew past the cap since it was logged is cut at the cap + 1 byte
and marked, so no file's bytes beyond that ever sit in memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

# Schemes whose paths the executors can open as local files: the local file system, and Unity
# Catalog Volumes (mounted at /Volumes on every node of a cluster).
LOCAL_SCHEMES = ("", "file", "dbfs")

_READ_SCHEMA = T.StructType(
    [T.StructField("content", T.BinaryType()), T.StructField("read_error", T.StringType())]
)


def local_path(path: str) -> str:
    """The path an executor opens for a file the file source names ``path``.

    ``file:/data/x.png`` → ``/data/x.png``;
    ``dbfs:/Volumes/c/s/v/x.png`` → ``/Volumes/c/s/v/x.png``.

    Raises:
        ValueError: For a scheme the executors cannot open as a local file (``s3://`` …), or a
            ``dbfs:`` path outside ``/Volumes``.
    """
    parts = urlsplit(path)
    scheme = parts.scheme.lower()
    if scheme not in LOCAL_SCHEMES or (scheme and parts.netloc):
        raise ValueError(
            f"Expected a local or Unity Catalog Volume path (file:/…, /Volumes/…). Received: "
            f"{path!r}: put raw files in a Volume."
        )
    local = unquote(parts.path) if scheme else path
    if scheme == "dbfs" and not local.startswith("/Volumes/"):
        raise ValueError(f"Expected a dbfs:/Volumes/… path. Received: {path!r}")
    return local


def with_content(files: DataFrame, max_bytes: int) -> DataFrame:
    """Add ``content`` and ``read_error`` to files with ``path`` and ``length``.

    ``content`` is the file's bytes when ``0 < length <= max_bytes`` (``b""`` for an empty file,
    null above the cap: never read). ``read_error`` says why a file within the cap has no
    content (vanished, unreadable, grown past the cap); null otherwise.
    """
    read = _reader(max_bytes)(F.col("path"))
    within = (F.col("length") > 0) & (F.col("length") <= max_bytes)
    return (
        files.withColumn("_read", F.when(within, read))
        .withColumn(
            "content",
            F.when(F.col("length") == 0, F.lit(b"")).otherwise(F.col("_read.content")),
        )
        .withColumn("read_error", F.col("_read.read_error"))
        .drop("_read")
    )


def _reader(max_bytes: int) -> Any:
    @F.pandas_udf(_READ_SCHEMA)
    def read(paths: pd.Series) -> pd.DataFrame:
        rows = [_read_one(path, max_bytes) for path in paths]
        return pd.DataFrame(rows, columns=["content", "read_error"])

    return read


def _read_one(path: str, max_bytes: int) -> tuple[bytes | None, str | None]:
    try:
        with open(local_path(path), "rb") as handle:
            content = handle.read(max_bytes + 1)
    except (OSError, ValueError) as error:
        return None, f"could not read the file: {type(error).__name__}: {error}"[:200]
    if len(content) > max_bytes:
        return None, f"the file grew past the cap of {max_bytes} bytes after it was listed"
    return content, None

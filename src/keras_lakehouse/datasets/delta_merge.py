"""MERGE into a Delta table, retried when another writer's commit wins the race.

Delta rejects a conflicting commit whole, so a MERGE that lost the race wrote nothing and can run
again on the table's new version: ``MERGE_ATTEMPTS`` times at most, then ``ConcurrentCommitError``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Literal

from kedro.io.core import DatasetError
from pyspark.sql import DataFrame

from keras_lakehouse.platform.redaction import redact_uri

logger = logging.getLogger(__name__)

WhenMatched = Literal["update", "ignore"]
WHEN_MATCHED = ("update", "ignore")

# A MERGE that loses a commit race to another writer is retried on the table's new version.
MERGE_ATTEMPTS = 4
MERGE_BACKOFF_SECONDS = 1.0  # doubled after each conflict, with jitter: about 7 s in all
# Delta's commit-conflict exceptions (Python names in delta.exceptions and delta.connect, and the
# JVM classes behind them: delta-spark 4.0.0 ships no delta.exceptions, so classic PySpark raises
# a bare Py4JJavaError around io.delta.exceptions.*).
CONCURRENT_CONFLICTS = frozenset(
    {
        "ConcurrentAppendException",
        "ConcurrentDeleteReadException",
        "ConcurrentDeleteDeleteException",
        "ConcurrentTransactionException",
        "ConcurrentWriteException",
        "MetadataChangedException",
        "ProtocolChangedException",
        "DeltaConcurrentModificationException",
    }
)


# What Spark says when two streams write one checkpoint (error class and message).
CONCURRENT_STREAM_MARKERS = (
    "CONCURRENT_STREAM_LOG_UPDATE",
    "Concurrent update to the log",
    "concurrently using metadata",  # both runs start the stream's first checkpoint
    "Multiple streaming queries are concurrently using",
)


class ConcurrentCommitError(DatasetError):
    """A MERGE that still conflicted with other writers' commits after ``MERGE_ATTEMPTS``."""


def merge_with_retries(
    open_table: Callable[[], Any],
    data: DataFrame,
    *,
    merge_keys: list[str],
    when_matched: WhenMatched,
    location: str,
) -> None:
    """MERGE ``data`` on ``merge_keys``; when another writer commits first, MERGE again.

    Args:
        open_table: Returns the target ``delta.tables.DeltaTable`` (called once per attempt, so
            each attempt reads the table's latest version).
        data: The rows to upsert.
        merge_keys: The columns that identify a row (null-safe equality).
        when_matched: ``update`` overwrites matched rows; ``ignore`` inserts new keys only.
        location: The table's path or name, for messages.

    Raises:
        ConcurrentCommitError: When every attempt lost its commit to another writer.
    """
    if data.isEmpty():  # nothing to merge: no commit, no scan of the table
        logger.debug("MERGE into %s skipped: no rows.", redact_uri(location))
        return
    condition = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in merge_keys)
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        merge = open_table().alias("t").merge(data.alias("s"), condition)
        if when_matched == "update":
            merge = merge.whenMatchedUpdateAll()
        try:
            merge.whenNotMatchedInsertAll().execute()
            return
        except Exception as error:
            conflict = concurrent_conflict(error)
            if conflict is None:
                raise
            if attempt == MERGE_ATTEMPTS:
                raise ConcurrentCommitError(
                    f"MERGE into {redact_uri(location)} failed {attempt} times: "
                    f"another run committed to the table concurrently each time ({conflict}). "
                    "This save wrote nothing (Delta rejects a conflicting commit whole); run "
                    "again once the other run has finished."
                ) from error
            pause = MERGE_BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            logger.warning(
                "MERGE into %s lost a commit race (%s), attempt %d of %d: retrying in %.1f s.",
                redact_uri(location),
                conflict,
                attempt,
                MERGE_ATTEMPTS,
                pause,
            )
            time.sleep(pause)


def concurrent_conflict(error: BaseException) -> str | None:
    """The name of Delta's commit-conflict exception behind ``error`` or its causes.

    Recognises Delta's Python classes by name and, through Py4J, the JVM exception's class and
    superclasses (``io.delta.exceptions.ConcurrentAppendException`` and kin).

    Args:
        error: What a Delta commit raised.

    Returns:
        The conflict's class name, or ``None`` when ``error`` is not a commit conflict.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for kind in type(current).__mro__:
            if kind.__name__ in CONCURRENT_CONFLICTS:
                return kind.__name__
        found = _java_conflict(getattr(current, "java_exception", None))
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _java_conflict(java_exception: Any) -> str | None:
    """The first Delta conflict class in a JVM exception's class hierarchy (via Py4J)."""
    if java_exception is None:
        return None
    try:
        kind = java_exception.getClass()
        while kind is not None:
            simple_name = str(kind.getName()).rsplit(".", 1)[-1]
            if simple_name in CONCURRENT_CONFLICTS:
                return simple_name
            kind = kind.getSuperclass()
    except Exception:  # a gateway that is gone: not a conflict we can tell
        return None
    return None


def concurrent_stream(error: BaseException) -> bool:
    """Whether a stream failed because another run's stream wrote the same checkpoint batch."""
    text = str(error)
    return any(marker in text for marker in CONCURRENT_STREAM_MARKERS)

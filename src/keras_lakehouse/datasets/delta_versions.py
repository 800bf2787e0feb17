"""Which Delta version a load reads: the version a DataFrame was loaded at, and the version a
data-quality verdict validated."""

from __future__ import annotations

import json
import weakref

from kedro.io.core import DatasetError
from pyspark.sql import DataFrame

# DataFrame → the Delta version it was loaded at (weak: forgotten with the DataFrame).
_LOADED_VERSIONS: weakref.WeakKeyDictionary[DataFrame, int] = weakref.WeakKeyDictionary()


def remember_loaded_version(frame: DataFrame, version: int) -> None:
    """Record that ``frame`` was read at Delta ``version`` (for ``delta_version_of``).

    Args:
        frame: The DataFrame a ``DeltaTableDataset`` load returned.
        version: The Delta version it read.
    """
    _LOADED_VERSIONS[frame] = version


def delta_version_of(frame: DataFrame) -> int | None:
    """The Delta version a ``DeltaTableDataset`` load read ``frame`` at.

    Args:
        frame: Any DataFrame.

    Returns:
        The version, or ``None`` for any other DataFrame, including ones derived from it.
    """
    return _LOADED_VERSIONS.get(frame)


def validated_version(verdict_path: str, location: str) -> int:
    """The Delta version of ``location`` that the data-quality verdict at ``verdict_path`` passed.

    Args:
        verdict_path: The verdict's JSON file (any fsspec URI).
        location: The table's path or name, for messages.

    Returns:
        The validated Delta version.

    Raises:
        DatasetError: When the verdict is missing, unreadable, failed, or names no version.
    """
    import fsspec

    try:
        with fsspec.open(verdict_path, "r") as handle:
            verdict = json.load(handle)
    except FileNotFoundError as error:
        raise DatasetError(
            f"No data-quality verdict for {location} at {verdict_path}: run "
            "`kedro run --pipelines=data_quality` first."
        ) from error
    except json.JSONDecodeError as error:  # e.g. a run killed while writing it
        raise DatasetError(
            f"The data-quality verdict {verdict_path} is unreadable ({error}): run "
            "`kedro run --pipelines=data_quality` again."
        ) from error
    version = verdict.get("delta_version")
    if not verdict.get("passed"):
        raise DatasetError(
            f"The data-quality gate failed for {location} at version {version}: "
            f"{verdict.get('failures')}. Fix the data or the suite, then run data_quality."
        )
    if version is None:
        raise DatasetError(
            f"The verdict {verdict_path} names no Delta version of {location} "
            "(written before verdicts were bound to versions): run data_quality again."
        )
    return int(version)

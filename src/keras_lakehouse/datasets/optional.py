"""A dataset that may not exist yet: its data when it does, a default (``None``) before.

Incremental nodes read what an earlier run wrote (the silver table, the saved vocabulary) beside
what they write. On the first run there is nothing: the wrapped dataset's load would fail, so
this one returns ``default`` and the node starts from scratch.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


class OptionalDataset(AbstractDataset[None, Any]):
    """Load the dataset at ``filepath`` when it exists, else ``default``. Read-only.

    ``dataset`` is the wrapped dataset's type, or its configuration without ``filepath`` (which
    stays at the top of the entry, like every path in the catalog). Example catalog entries (the
    silver table as the last run left it, and the latest saved vocabulary; ``None`` before the
    first run)::

        images_silver_known:
          type: keras_lakehouse.datasets.optional.OptionalDataset
          filepath: data/05_model_input/images_silver
          dataset: keras_lakehouse.datasets.DeltaTableDataset

        vocabulary_saved:
          type: keras_lakehouse.datasets.optional.OptionalDataset
          filepath: data/05_model_input/vocabulary.json
          dataset: {type: json.JSONDataset, versioned: true}

    A versioned wrapped dataset loads its latest version. After ``start_over()`` (a full
    refresh, which overwrites the tables a node would compare with) every load returns
    ``default``. With ``unreadable_as_default`` (for reports a node re-makes from the data, like
    the last quality report) a file that cannot be read, e.g. half-written by a killed run,
    loads as ``default`` too, with a warning; otherwise the load fails.
    """

    def __init__(
        self,
        *,
        filepath: str,
        dataset: str | dict[str, Any],
        default: Any = None,
        unreadable_as_default: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Build the wrapped dataset from its type or configuration and ``filepath``.

        Raises:
            DatasetError: When ``dataset`` names no type, or repeats ``filepath``.
        """
        config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        if "type" not in config or "filepath" in config:
            raise DatasetError(
                "OptionalDataset needs 'dataset': the wrapped dataset's type, or its "
                "configuration with a 'type' and without 'filepath' (given once, at the top). "
                f"Received: dataset={dataset!r}"
            )
        self._dataset = AbstractDataset.from_config("optional", {**config, "filepath": filepath})
        self._default = default
        self._unreadable_as_default = unreadable_as_default
        self._forgotten = False
        self.metadata = metadata

    def load(self) -> Any:
        """The wrapped dataset's data, or ``default`` when it does not exist yet (or after
        ``start_over``)."""
        if self._forgotten or not self._dataset.exists():
            return self._default
        try:
            return self._dataset.load()
        except DatasetError as error:
            if not self._unreadable_as_default:
                raise
            where = self._dataset._describe().get("filepath", self._dataset)
            reason = str(error).strip().splitlines()[-1]
            logger.warning("%s is unreadable (%s): read as not written yet", where, reason)
            return self._default

    def start_over(self) -> None:
        """Load ``default`` from now on, as before a first run: what earlier runs wrote is
        ignored (a full refresh, which rewrites the outputs instead of merging into them)."""
        self._forgotten = True

    def save(self, data: None) -> None:
        """Read-only: write through the dataset's own catalog entry.

        Raises:
            DatasetError: Always.
        """
        raise DatasetError(f"{self} is read-only: save through the wrapped dataset's own entry.")

    def _exists(self) -> bool:
        return True  # a load always returns something

    def _describe(self) -> dict[str, Any]:
        return {**self._dataset._describe(), "default": self._default}

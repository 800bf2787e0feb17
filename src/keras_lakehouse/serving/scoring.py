"""Batch scoring with Spark: a registered model version over a DataFrame of raw items.

The alias is resolved once on the driver (every partition uses the same version, even if the
alias moves mid-job), the model's files are downloaded once on the driver into a folder the
executors can read (a local folder here, a Volume on Databricks), and each partition loads the
model once and scores its Arrow batches with ``mapInPandas``. A batch is scored in
``platform.spark.tasks_for_rows`` partitions: a model load in a fresh Python worker imports
TensorFlow, so a small batch is one task instead of one per core.

The cache folder is named for what it holds (version, run and content digest), filled through a
temporary folder and an atomic rename, and checked against the digest recorded at registration
whenever it is used (``integrity``): a half-written, stale or changed copy is never loaded.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.platform.spark import tasks_for_rows
from keras_lakehouse.serving.integrity import DIGEST_TAG, require_digest, verify_model_folder
from keras_lakehouse.serving.mlflow_model import CLASS_PREFIX, LABEL_COLUMN, PROBABILITY_COLUMN

logger = logging.getLogger(__name__)

PREDICTIONS_COLUMNS = (
    "key",
    "source",
    "modality",
    "predicted_label",
    "probability",
    "probabilities",
    "model_name",
    "model_version",
    "scored_at",
)
_SCORED_SCHEMA = T.StructType(
    [
        T.StructField("key", T.StringType(), nullable=False),
        T.StructField("source", T.StringType()),
        T.StructField("predicted_label", T.StringType()),
        T.StructField("probability", T.DoubleType()),
        T.StructField("probabilities", T.MapType(T.StringType(), T.DoubleType())),
    ]
)


# Rows one scoring task takes by default (batch inference sets its own: `inference` parameters).
ROWS_PER_TASK = 5000


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version whose files sit in a folder executors can read."""

    name: str
    version: str
    path: str
    digest: str  # integrity.DIGEST_TAG, checked before every load

    def load(self) -> Any:
        """The MLflow model, after checking its files and code (``integrity``)."""
        import mlflow

        verify_model_folder(self.path, self.digest, model=f"{self.name} v{self.version}")
        return mlflow.pyfunc.load_model(self.path)


def fetch_model(name: str, alias: str, cache_dir: str | Path) -> ModelVersion:
    """Resolve ``name@alias`` to its version and download that version once.

    Raises:
        LookupError: When no version of ``name`` has ``alias`` (train and evaluate first).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        version = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        raise LookupError(
            f"No version of the registered model {name!r} has the alias {alias!r} in "
            f"{mlflow.get_registry_uri()}. Run the default pipeline (training and evaluation) "
            "first."
        ) from error
    return fetch_version(name, version, cache_dir)


def fetch_version(name: str, version: str, cache_dir: str | Path) -> ModelVersion:
    """Download ``models:/name/version`` once into ``cache_dir``, verified (see module doc).

    Raises:
        LookupError: When the version does not exist (any more).
        ModelIntegrityError: When the files differ from the registered digest, carry code this
            package has not reviewed, or the version has no digest.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow.MlflowClient().get_model_version(name, version)
    except MlflowException as error:  # e.g. deleted after the alias was resolved
        raise LookupError(
            f"{name} v{version} cannot be fetched from {mlflow.get_registry_uri()}: {error.message}"
        ) from error
    label = f"{name} v{version}"
    expected = require_digest(found.tags.get(DIGEST_TAG), model=label)
    target = Path(cache_dir) / name / f"v{version}-{(found.run_id or 'norun')[:8]}-{expected[:16]}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(staging))
            verify_model_folder(staging, expected, model=label)
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent download that finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    verify_model_folder(target, expected, model=label)
    return ModelVersion(name=name, version=version, path=str(target.resolve()), digest=expected)


def score(
    frame: DataFrame,
    model: ModelVersion,
    *,
    modality: str,
    key: str,
    source: str,
    input_column: str,
    rows_per_task: int = ROWS_PER_TASK,
) -> DataFrame:
    """One prediction row per input row, in ``PREDICTIONS_COLUMNS`` order.

    ``frame`` is counted first (cheap when it is cached, as the inference nodes' input is) and
    scored in ``tasks_for_rows(rows, rows_per_task)`` partitions, never more than it has.

    Args:
        frame: Raw items: a key, a source (path or id) and the model's input column.
        model: The version to score with (from ``fetch_model``).
        modality: ``image`` or ``text`` (a column of the output).
        key, source, input_column: Column names in ``frame``.
        rows_per_task: The rows one task scores (each task loads the model once).
    """

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        loaded = model.load()  # once per partition, verified
        for batch in batches:
            output = loaded.predict(pd.DataFrame({input_column: batch[input_column]}))
            classes = [column for column in output.columns if column.startswith(CLASS_PREFIX)]
            names = [column.removeprefix(CLASS_PREFIX) for column in classes]
            yield pd.DataFrame(
                {
                    "key": batch[key].to_numpy(),
                    "source": batch[source].to_numpy(),
                    "predicted_label": output[LABEL_COLUMN].to_numpy(),
                    "probability": output[PROBABILITY_COLUMN].to_numpy(),
                    "probabilities": [
                        dict(zip(names, row, strict=True))
                        for row in output[classes].to_numpy(dtype=float).tolist()
                    ],
                }
            )

    tasks = tasks_for_rows(frame.count(), rows_per_task)
    scored = (
        frame.select(F.col(key).alias(key), F.col(source).alias(source), F.col(input_column))
        .coalesce(tasks)
        .mapInPandas(predict, _SCORED_SCHEMA)
    )
    return scored.select(
        "key",
        "source",
        F.lit(modality).alias("modality"),
        "predicted_label",
        "probability",
        "probabilities",
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
    )

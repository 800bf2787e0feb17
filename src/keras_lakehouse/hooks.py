"""Project hooks: parameters are checked and the Spark session built before any node runs.

Kedro imports this module (through ``settings.py``) at every command: MLflow is imported only
when a pipeline with MLflow nodes starts (``platform.tracking`` imports it in its functions).
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from keras_lakehouse.params_validation import validate_parameters
from keras_lakehouse.platform.env_settings import check_unity_catalog
from keras_lakehouse.platform.spark import get_or_create_spark
from keras_lakehouse.platform.tracking import configure_tracking

logger = logging.getLogger(__name__)

MLFLOW_TAG = "mlflow"  # nodes that talk to MLflow (training, evaluation, registry, inference)


class ParameterValidationHooks:
    """Fail at start-up, naming the parameter, when a parameter section is invalid."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate every known parameter section against its typed model, and across sections.

        Reads the raw merged parameters (runtime ``--params`` included), not ``context.params``:
        that runs Kedro's own validation of the typed node inputs first, whose error names no
        value received and knows no check across sections.

        Raises:
            ValueError: Naming each invalid parameter and the value received.
        """
        try:
            parameters = context.config_loader["parameters"]
        except MissingConfigException:
            return  # no parameter files: Kedro warns, and there is nothing to check
        validate_parameters(parameters)


class FullRefreshHooks:
    """``--params ingestion.full_refresh=true``: the run starts over. The file logs it reads
    forget every file (all are checked again) and the Delta tables built from them by MERGE are
    rewritten instead (bronze, quarantine, silver; earlier versions stay in the Delta history)."""

    def __init__(self) -> None:
        self._full_refresh = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read ``ingestion.full_refresh`` (runtime ``--params`` included)."""
        try:
            parameters = context.config_loader["parameters"]
        except MissingConfigException:
            return
        self._full_refresh = bool((parameters.get("ingestion") or {}).get("full_refresh"))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Reset the file logs the pipeline reads and switch its MERGE outputs to overwrite."""
        if not self._full_refresh:
            return
        from keras_lakehouse.datasets import DeltaTableDataset, FileStreamDataset
        from keras_lakehouse.datasets.optional import OptionalDataset

        logs = sorted(
            name for name in pipeline.inputs() if isinstance(catalog.get(name), FileStreamDataset)
        )
        if not logs:
            return
        for name in logs:
            catalog.get(name).start_over()
        # Only what is built from those files: not, say, the predictions of a scoring run. The
        # nodes' reads of what earlier runs wrote (bronze keys, silver, the saved vocabulary)
        # read as before a first run, so every row is computed again and nothing is lost.
        downstream = pipeline.from_inputs(*logs)
        for name in sorted(downstream.inputs()):
            dataset = catalog.get(name)
            if isinstance(dataset, OptionalDataset) or (
                isinstance(dataset, DeltaTableDataset) and dataset.can_start_over
            ):
                dataset.start_over()
        for name in sorted(downstream.all_outputs()):
            dataset = catalog.get(name)
            if isinstance(dataset, DeltaTableDataset) and dataset.replace_on_save():
                logger.warning("Full refresh: %s is rewritten, not merged into", name)


class SparkHooks:
    """Own the Spark session: nodes and datasets only ever ask for the active one."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Build (locally) or attach to (on Databricks) the session from ``spark.yml``; in the
        databricks env, check that the Unity Catalog schema and Volume exist."""
        spark = get_or_create_spark(
            context.config_loader["spark"], app_name=context.project_path.name
        )
        check_unity_catalog(spark, context.config_loader["globals"])


class MlflowHooks:
    """Point MLflow at the project's store before a pipeline runs (not for every command)."""

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._project_path: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Keep ``mlflow.yml`` and the project path for when a pipeline starts."""
        self._config = dict(context.config_loader["mlflow"])
        self._project_path = context.project_path

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Configure tracking only when a node of the pipeline is tagged ``mlflow``."""
        if any(MLFLOW_TAG in node.tags for node in pipeline.nodes):
            configure_tracking(self._config, project_path=self._project_path)

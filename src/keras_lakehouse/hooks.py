"""Project hooks: parameters are checked and the Spark session built before any node runs.

Kedro imports this module (through ``settings.py``) at every command: MLflow is imported only
when a pipeline with MLflow nodes starts (``platform.tracking`` imports it in its functions).
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from keras_lakehouse.params import validate_parameters
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

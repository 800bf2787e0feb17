"""MLflow tracking: where runs go, and what a training run records."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keras_lakehouse.platform.redaction import redact_uri

logger = logging.getLogger(__name__)

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


def configure_tracking(config: Mapping[str, Any], *, project_path: Path) -> str:
    """Point MLflow at the configured store and experiment, unless the environment says otherwise.

    A relative ``sqlite:///file.db`` is taken relative to the project, and the experiment's
    artifacts go to ``<project>/mlruns``; ``MLFLOW_TRACKING_URI`` overrides the store. The
    configured ``registry_uri`` (``databricks-uc`` on Databricks) belongs to the configured store:
    when ``MLFLOW_TRACKING_URI`` moves tracking elsewhere (tests, the local stand-in of the
    databricks env), the registry moves with it, unless ``MLFLOW_REGISTRY_URI`` names one. On
    Databricks (tracking ``databricks``) the experiment is a workspace path such as
    ``/Shared/keras_lakehouse`` and Databricks places its artifacts: none is passed unless
    ``artifact_location`` is configured.

    Returns:
        The tracking URI in use.
    """
    import mlflow

    uri, registry = use_store(config, project_path=project_path)
    name = str(config["experiment_name"])
    if mlflow.get_experiment_by_name(name) is None:
        artifacts = config.get("artifact_location")
        if artifacts is None and uri.split(":", 1)[0] != "databricks":
            artifacts = (project_path / "mlruns").as_uri()
        mlflow.create_experiment(name, artifact_location=str(artifacts) if artifacts else None)
    mlflow.set_experiment(name)
    logger.info(
        "MLflow: tracking %s, registry %s, experiment %r",
        redact_uri(uri),
        redact_uri(registry),
        name,
    )
    return uri


def use_store(config: Mapping[str, Any], *, project_path: Path) -> tuple[str, str]:
    """Point MLflow's tracking and registry at the configured store, creating nothing (enough for
    commands that only read the registry). See ``configure_tracking`` for the overrides.

    Returns:
        The tracking and registry URIs in use.
    """
    import mlflow

    configured = _project_relative(str(config["tracking_uri"]), project_path)
    uri = os.environ.get(TRACKING_URI_VARIABLE) or configured
    registry = os.environ.get("MLFLOW_REGISTRY_URI") or (
        str(config.get("registry_uri") or uri) if uri == configured else uri
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    return uri, registry


@contextmanager
def training_run(
    model_name: str, *, params: Mapping[str, Any], tags: Mapping[str, Any]
) -> Iterator[Any]:
    """One MLflow run for one model; an exception inside marks the run FAILED and re-raises."""
    import mlflow

    with mlflow.start_run(run_name=model_name) as run:
        mlflow.set_tags({"model": model_name, **{key: str(value) for key, value in tags.items()}})
        mlflow.log_params(flatten(params))
        yield run


def log_delta_input(location: str, version: int, *, name: str, context: str = "training") -> None:
    """Lineage the MLflow way: the active run's input is the Delta table ``location`` (a path, or
    a ``catalog.schema.table`` name) at ``version``. Builds the dataset from its source alone:
    nothing is read."""
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    is_path = "/" in location or ":" in location
    source = DeltaDatasetSource(
        path=location if is_path else None,
        delta_table_name=None if is_path else location,
        delta_table_version=int(version),
    )
    mlflow.log_input(MetaDataset(source, name=name), context=context)


def log_history(history: Mapping[str, list[float]]) -> None:
    """Per-epoch metrics, one step per epoch."""
    import mlflow

    for epoch, values in enumerate(zip(*history.values(), strict=True)):
        mlflow.log_metrics(dict(zip(history, values, strict=True)), step=epoch)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (MLflow params are flat)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _project_relative(uri: str, project_path: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return f"{prefix}{(project_path / uri[len(prefix) :]).resolve()}"
    return uri

"""The training nodes take typed parameters, and Kedro builds them from the project's config."""

from __future__ import annotations

import copy
import inspect
import typing
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.context import KedroContext
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.validation import ParameterValidationError, ParameterValidator

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.params import ImageIngestionParams, ImagePreprocessingParams, TrainingParams
from keras_lakehouse.pipelines.training import create_pipeline, nodes

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMETER_TYPES = {
    "params:training": TrainingParams,
    "params:preprocessing.images": ImagePreprocessingParams,
    "params:preprocessing.texts.sequence_length": int,
    # the training profiles (monitoring)
    "params:ingestion.images": ImageIngestionParams,
    "params:preprocessing.images.image_size": int,
}


@pytest.fixture(scope="module")
def context() -> KedroContext:
    """The project's context as a session builds it (its config loader and settings), without
    the hooks (no Spark session, no MLflow)."""
    bootstrap_project(PROJECT_ROOT)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(PROJECT_ROOT / "conf"), env=None, **settings.CONFIG_LOADER_ARGS
    )
    return KedroContext(
        package_name="keras_lakehouse",
        project_path=PROJECT_ROOT,
        config_loader=loader,
        hook_manager=_create_hook_manager(),
        env=None,
    )


def test_kedro_hands_each_training_node_its_parameter_models(context: KedroContext) -> None:
    catalog = context.catalog  # parameters validated against every registered pipeline
    for node in create_pipeline().nodes:
        hints = typing.get_type_hints(node.func)
        arguments = list(inspect.signature(node.func).parameters)
        for argument, name in zip(arguments, node.inputs, strict=False):
            if not name.startswith("params:"):
                continue
            value = catalog.load(name)  # what the runner hands the node
            assert isinstance(value, PARAMETER_TYPES[name]), (node.name, name, type(value))
            assert isinstance(value, hints[argument]), (node.name, name, argument)


def test_kedro_names_the_parameter_when_a_training_value_is_invalid(
    context: KedroContext,
) -> None:
    raw = copy.deepcopy(context.config_loader["parameters"])
    raw["training"]["cnn"]["epochs"] = 0
    validator = ParameterValidator({"training": create_pipeline()})
    with pytest.raises(ParameterValidationError, match=r"(?s)'training'.*cnn\.epochs"):
        validator.validate_raw_params(raw)


def test_the_nodes_read_their_settings_from_the_models(
    context: KedroContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = context.config_loader["parameters"]
    training = TrainingParams.model_validate(raw["training"])
    images = ImagePreprocessingParams.model_validate(raw["preprocessing"]["images"])
    seen: dict[str, Any] = {}

    def record(job: Any, snapshot: Any, settings: Any, **kwargs: Any) -> tuple[None, dict]:
        seen.update(job=job, settings=settings, **kwargs)
        return None, {}

    monkeypatch.setattr(nodes, "_train_and_log", record)
    monkeypatch.setattr(nodes, "_image_example", lambda snapshot, size: None)
    snapshot = DeltaSnapshot("silver", 3, (), 0, {})
    nodes.train_cnn(snapshot, {"cat": 0, "dog": 1}, training, images)
    assert seen["settings"] is training
    assert seen["job"].fit is training.cnn
    assert seen["job"].seed == training.seed
    assert seen["job"].decode.image_size == images.image_size
    assert seen["spec"].max_pixels == images.max_pixels
    assert seen["params"]["image_size"] == images.image_size

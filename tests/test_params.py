"""Parameters are validated at start-up with messages naming the parameter; nodes get models."""

from __future__ import annotations

import copy
import inspect
import shutil
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.context import KedroContext
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.validation import ParameterValidationError, TypeExtractor
from pydantic import BaseModel

from keras_lakehouse.hooks import ParameterValidationHooks
from keras_lakehouse.params_validation import validate_parameters
from keras_lakehouse.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The stages whose nodes take every parameter section as a model (training is typed likewise).
TYPED_STAGES = ("ingestion", "data_quality", "preprocessing", "evaluation", "inference")


@pytest.fixture(scope="module")
def base_params() -> dict:
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    return dict(loader["parameters"])


def test_shipped_parameters_are_valid(base_params: dict) -> None:
    validate_parameters(base_params)
    assert base_params["ingestion"]["images"]["allowed_labels"] == ["circle", "square", "triangle"]
    assert base_params["images_bronze_suite"]["expectations"]


def test_globals_feed_the_suites(base_params: dict) -> None:
    in_set = [
        spec
        for spec in base_params["texts_bronze_suite"]["expectations"]
        if spec["expectation"] == "expect_column_values_to_be_in_set"
    ]
    assert in_set[0]["kwargs"]["value_set"] == ["sports", "technology", "cooking"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("ingestion", "images", "max_pixels"), 0, "ingestion.images.max_pixels"),
        (("ingestion", "images", "allowed_formats"), ["PNG", "HEIC"], "allowed_formats"),
        (("ingestion", "images", "allowed_labels"), ["a", "a"], "labels must be unique"),
        (("ingestion", "texts", "max_text_chars"), -1, "ingestion.texts.max_text_chars"),
        (("ingestion", "texts", "max_chars"), 5, "Extra inputs are not permitted"),
        (("texts_bronze_suite", "class_balance", "min_fraction"), 1.5, "min_fraction"),
        (("preprocessing", "split"), {"train": 0.7, "val": 0.2, "test": 0.2}, "sum to 1"),
        (("preprocessing", "split"), {"train": 0.9, "test": 0.1}, "exactly ['train', 'val'"),
        (("preprocessing", "images", "image_size"), 4, "preprocessing.images.image_size"),
        (("preprocessing", "texts", "vocabulary_size"), 2, "vocabulary_size"),
        (("training", "strategy"), "horovod", "training.strategy"),
        (("training", "num_workers"), 0, "training.num_workers"),
        (("training", "cnn", "batch_size"), -8, "training.cnn.batch_size"),
        (("training", "cnn", "optimizer"), "rmsprop", "training.cnn.optimizer"),
        (("training", "lstm", "learning_rate"), 0, "training.lstm.learning_rate"),
        (("training", "cnn", "augmentation", "zoom"), 1.5, "augmentation.zoom"),
        (("preprocessing", "images", "image_size"), 6, "too small for 3 pooling blocks"),
        (("evaluation", "metric"), "auc", "evaluation.metric"),
        (("evaluation", "cnn", "floor"), 1.2, "evaluation.cnn.floor"),
        (("evaluation", "lstm", "min_delta"), -0.1, "evaluation.lstm.min_delta"),
        (("serving", "alias"), "champion!", "serving.alias"),
        (("inference", "image_model"), "", "inference.image_model"),
        (("inference", "rows_per_scoring_task"), 0, "inference.rows_per_scoring_task"),
    ],
)
def test_bad_value_fails_naming_the_parameter(
    base_params: dict, path: tuple[str, ...], value: object, message: str
) -> None:
    params = copy.deepcopy(base_params)
    target = params
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match="Invalid parameters") as raised:
        validate_parameters(params)
    assert message in str(raised.value)
    assert "Received" in str(raised.value)


def test_bad_severity_is_rejected(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["images_bronze_suite"]["expectations"][0]["severity"] = "fatal"
    with pytest.raises(ValueError, match=r"images_bronze_suite\.expectations\.0\.severity"):
        validate_parameters(params)


def test_spark_config_binds_to_loopback_and_enables_delta() -> None:
    spark = yaml.safe_load((PROJECT_ROOT / "conf/base/spark.yml").read_text())
    assert spark["spark.driver.bindAddress"] == "127.0.0.1"
    assert spark["spark.ui.enabled"] is False
    assert spark["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_env_parameter_files_and_runtime_params_override_only_what_they_name(
    tmp_path: Path,
) -> None:
    shutil.copytree(PROJECT_ROOT / "conf" / "base", tmp_path / "base")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "parameters_training.yml").write_text(
        "training:\n  cnn:\n    epochs: 2\n"
    )
    loader = OmegaConfigLoader(
        str(tmp_path), runtime_params={"training": {"lstm": {"epochs": 3}}}, **CONFIG_LOADER_ARGS
    )
    training = loader["parameters"]["training"]
    assert (training["cnn"]["epochs"], training["lstm"]["epochs"]) == (2, 3)
    assert training["cnn"]["batch_size"] == 32  # untouched keys survive both overrides
    validate_parameters(loader["parameters"])


# ---- typed node inputs: Kedro builds the models, our hook keeps its own messages --------------
@pytest.fixture(scope="module")
def registry() -> dict:
    bootstrap_project(PROJECT_ROOT)
    return dict(pipelines)


def project_context(runtime_params: dict | None = None, env: str | None = None) -> KedroContext:
    """The project's context as a session builds it (no hook has run)."""
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), env=env, runtime_params=runtime_params, **CONFIG_LOADER_ARGS
    )
    return KedroContext(
        package_name="keras_lakehouse",
        project_path=PROJECT_ROOT,
        config_loader=loader,
        hook_manager=_create_hook_manager(),
        env=env,
        runtime_params=runtime_params,
    )


def params_inputs(registry: dict, stages: tuple[str, ...]) -> list[tuple[str, str, object]]:
    """``(node, params:… input, annotation)`` for every parameter input of the stages' nodes."""
    found = []
    for stage in stages:
        for node in registry[stage].nodes:
            hints = get_type_hints(node.func)
            arguments = list(inspect.signature(node.func).parameters)
            for argument, dataset in zip(arguments, node.inputs, strict=False):
                if dataset.startswith("params:"):
                    found.append((node.name, dataset, hints.get(argument)))
    return found


def test_typed_parameter_inputs_never_nest(registry: dict) -> None:
    """Kedro sets each typed input's model into the parameters: a typed ``params:a`` and a typed
    ``params:a.b`` would make it fail to set ``a.b`` inside the model ``a``."""
    typed = TypeExtractor(registry).extract_types_from_pipelines()
    nested = sorted(
        (outer, inner) for outer in typed for inner in typed if inner.startswith(f"{outer}.")
    )
    assert not nested, f"Expected typed parameter inputs that do not nest. Received: {nested}"
    assert {
        "ingestion.images",
        "ingestion.texts",
        "images_bronze_suite",
        "texts_bronze_suite",
        "preprocessing.split",
        "preprocessing.images",
        "preprocessing.texts",
        "evaluation",
        "serving",
        "inference",
    } <= set(typed)


def test_every_parameter_section_a_node_takes_is_a_model(registry: dict, base_params: dict) -> None:
    untyped = []
    for node, dataset, annotation in params_inputs(registry, TYPED_STAGES):
        value = base_params
        for key in dataset.removeprefix("params:").split("."):
            value = value[key]
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if isinstance(value, dict) != is_model:
            untyped.append(f"{node}: {dataset} annotated {annotation}")
    assert not untyped, (
        "Expected each parameter section a node takes to be annotated with its model (and "
        f"nothing else). Received: {untyped}"
    )


@pytest.mark.parametrize("env", [None, "test"])
def test_a_valid_project_hands_nodes_model_instances(registry: dict, env: str | None) -> None:
    context = project_context(env=env)
    ParameterValidationHooks().after_context_created(context)  # valid: no error
    feed = context._get_parameters()  # what a session's catalog holds for the nodes
    checked = 0
    for node, dataset, annotation in params_inputs(registry, TYPED_STAGES):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert isinstance(feed[dataset], annotation), f"{node}: {dataset}"
            checked += 1
    assert checked >= 15
    assert feed["params:preprocessing.images.image_size"] == (32 if env == "test" else 64)


def test_an_invalid_value_stops_the_session_at_start_up_with_our_message(registry: dict) -> None:
    """Before any node or Spark: the hook reads the raw parameters, so the message names the
    parameter and the value received (Kedro's own validation, reached through
    ``context.params``, would fail first with its own message)."""
    bad = {"ingestion": {"images": {"max_pixels": 0}}}
    with (
        KedroSession.create(project_path=PROJECT_ROOT, runtime_params=bad) as session,
        pytest.raises(ValueError, match="Invalid parameters") as raised,
    ):
        session.load_context()
    assert "ingestion.images.max_pixels: Input should be greater than 0. Received: 0" in str(
        raised.value
    )
    with pytest.raises(ParameterValidationError):
        _ = project_context(bad).params


def test_the_cross_section_check_runs_at_start_up(registry: dict) -> None:
    """A pooling depth too deep for the image size is valid section by section: Kedro's
    validation lets it through, our hook does not."""
    deep = {
        "preprocessing": {"images": {"image_size": 8}},
        "training": {"cnn": {"filters": [4] * 4}},
    }
    context = project_context(deep)
    assert context.params["preprocessing"]["images"].image_size == 8
    with pytest.raises(ValueError, match=r"too small for 4 pooling blocks.*Received: 8"):
        ParameterValidationHooks().after_context_created(context)

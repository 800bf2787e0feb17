"""Parameters are validated at start-up with messages naming the parameter."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from keras_lakehouse.params import validate_parameters
from keras_lakehouse.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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

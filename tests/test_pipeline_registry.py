"""The registry: stage pipelines, the default run, modality namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from keras_lakehouse.pipeline_registry import DEFAULT_STAGES

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry() -> dict:
    bootstrap_project(PROJECT_ROOT)
    return dict(pipelines)


def test_default_runs_the_stages_in_data_flow_order(registry: dict) -> None:
    default = registry["__default__"]
    stages = ("ingestion", "data_quality", "preprocessing", "training")
    assert stages == DEFAULT_STAGES
    assert set(default.nodes) == set().union(*(registry[name].nodes for name in stages))
    order = [node.name for node in default.nodes]  # topologically sorted
    assert order.index("image.upsert_images_bronze") < order.index("image.validate_images_bronze")
    assert order.index("image.gate_images_bronze") < order.index("image.split_images")
    assert order.index("image.decode_images") < order.index("image.train_cnn")


def test_each_modality_runs_alone(registry: dict) -> None:
    text = registry["__default__"].only_nodes_with_namespaces(["text"])
    assert {node.name for node in text.nodes} == {
        "text.check_raw_texts",
        "text.upsert_texts_bronze",
        "text.validate_texts_bronze",
        "text.gate_texts_bronze",
        "text.wait_for_texts_gate",
        "text.split_texts",
        "text.fit_vocabulary",
        "text.vectorize_texts",
        "text.train_lstm",
    }
    assert text.inputs() == {
        "raw_texts",
        "params:ingestion.texts",
        "params:texts_bronze_suite",
        "params:preprocessing",
        "params:training",
        "params:preprocessing.texts.sequence_length",
    }


def test_every_node_has_a_docstring(registry: dict) -> None:
    undocumented = [node.name for node in registry["__default__"].nodes if not node.func.__doc__]
    assert undocumented == []

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
    stages = ("ingestion", "data_quality", "preprocessing", "training", "evaluation")
    assert stages == DEFAULT_STAGES
    assert set(default.nodes) == set().union(*(registry[name].nodes for name in stages))
    order = [node.name for node in default.nodes]  # topologically sorted
    assert order.index("image.upsert_images_bronze") < order.index("image.validate_images_bronze")
    assert order.index("image.record_images_bronze_verdict") < order.index("image.split_images")
    assert order.index("image.decode_images") < order.index("image.train_cnn")
    assert order.index("image.train_cnn") < order.index("image.evaluate_cnn")
    assert order.index("image.evaluate_cnn") < order.index("image.register_cnn")


def test_inference_is_separate_and_needs_only_new_files_and_the_registry(registry: dict) -> None:
    inference = registry["inference"]
    assert not set(inference.nodes) & set(registry["__default__"].nodes)
    assert inference.inputs() == {
        "raw_inference_images",
        "raw_inference_texts",
        "params:ingestion.images",
        "params:ingestion.texts",
        "params:serving",
        "params:inference",
        # monitoring, inside the inference run: labels as they arrive, the drift table so far
        "params:monitoring",
        "monitoring_labels",
        "monitoring_drift_known",
    }
    order = [node.name for node in inference.nodes]
    assert order[-1] == "check_monitoring"  # after the tables and the report are written
    assert order.index("collect_predictions") < order.index("measure_live_quality")


def test_nodes_that_use_mlflow_are_tagged_for_the_tracking_hook(registry: dict) -> None:
    from keras_lakehouse.hooks import MLFLOW_TAG

    tagged = {
        node.name
        for pipeline in registry.values()
        for node in pipeline.nodes
        if MLFLOW_TAG in node.tags
    }
    assert tagged == {
        "image.train_cnn",
        "text.train_lstm",
        "image.evaluate_cnn",
        "text.evaluate_lstm",
        "image.register_cnn",
        "text.register_lstm",
        "image.score_images",
        "text.score_texts",
        "image.profile_cnn_training",
        "text.profile_lstm_training",
        "image.monitor_images",
        "text.monitor_texts",
        "record_monitoring",
    }


def test_each_modality_runs_alone(registry: dict) -> None:
    text = registry["__default__"].only_nodes_with_namespaces(["text"])
    assert {node.name for node in text.nodes} == {
        "text.check_raw_texts",
        "text.upsert_texts_bronze",
        "text.settle_raw_texts",
        "text.validate_texts_bronze",
        "text.record_texts_bronze_verdict",
        "text.gate_texts_bronze",
        "text.wait_for_texts_gate",
        "text.split_texts",
        "text.fit_vocabulary",
        "text.vectorize_texts",
        "text.train_lstm",
        "text.profile_lstm_training",
        "text.evaluate_lstm",
        "text.register_lstm",
    }
    assert text.inputs() == {
        "raw_texts",
        "texts_bronze_known",  # bronze as this run found it: a known id is a duplicate
        "texts_bronze_validated",  # bronze at the version its verdict validated
        "texts_silver_known",  # silver as the last run left it: only what it lacks is added
        "vocabulary_saved",  # the last vocabulary: `vocabulary_policy: keep` keeps it
        "texts_bronze_quality_report_known",  # the last report: a validated version stands
        "params:ingestion.texts",
        "params:texts_bronze_suite",
        "params:preprocessing.seed",
        "params:preprocessing.split",
        "params:preprocessing.text_labels",
        "params:preprocessing.texts",
        "params:training",
        "params:preprocessing.texts.sequence_length",
        "params:evaluation",
        "params:serving",
    }


def test_every_node_has_a_docstring(registry: dict) -> None:
    nodes = {node for pipeline in registry.values() for node in pipeline.nodes}
    undocumented = [node.name for node in nodes if not node.func.__doc__]
    assert undocumented == []

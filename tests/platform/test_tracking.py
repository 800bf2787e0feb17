"""MLflow lineage: the training run's input is the Delta table and version it read."""

from __future__ import annotations

import json

import mlflow

from keras_lakehouse.platform.tracking import log_delta_input


def test_the_run_input_names_the_delta_table_and_its_version(tmp_path) -> None:
    mlflow.set_experiment("lineage-tests")
    with mlflow.start_run() as run:
        log_delta_input(str(tmp_path / "images_silver"), 7, name="cnn_silver")
        log_delta_input("main.kl.texts_silver", 3, name="lstm_silver")
    inputs = mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    found = {item.dataset.name: item for item in inputs}
    assert set(found) == {"cnn_silver", "lstm_silver"}
    image = found["cnn_silver"]
    assert image.dataset.source_type == "delta_table"
    assert json.loads(image.dataset.source) == {
        "path": str(tmp_path / "images_silver"),
        "delta_table_version": 7,
    }
    assert [tag.value for tag in image.tags if tag.key == "mlflow.data.context"] == ["training"]
    source = json.loads(found["lstm_silver"].dataset.source)
    assert (source["delta_table_name"], source["delta_table_version"]) == (
        "main.kl.texts_silver",
        3,
    )

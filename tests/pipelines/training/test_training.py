"""Training plumbing: pinned snapshots, no driver collects, mirrored devices, MLflow runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession

from keras_lakehouse.datasets import DeltaSnapshotDataset, DeltaTableDataset
from keras_lakehouse.platform.tracking import flatten, training_run
from keras_lakehouse.training.loader import ImageColumns, to_tf_dataset

SIZE = 8


def silver_rows(count: int, offset: int = 0) -> list[tuple]:
    """Separable images: the label decides which third of the image is bright."""
    rows = []
    for i in range(offset, offset + count):
        label = i % 3
        pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
        pixels[:, label * SIZE // 3 : (label + 1) * SIZE // 3] = 255
        split = ("train", "train", "train", "val", "test")[i % 5]
        rows.append((f"k{i}", label, split, pixels.tobytes()))
    return rows


def silver_frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, "key string, label_index int, split string, image binary")


def test_snapshot_is_pinned_and_streams_without_collecting(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "silver")
    DeltaTableDataset(filepath=path).save(silver_frame(spark, silver_rows(60)))

    def refuse(*args, **kwargs):
        raise AssertionError("the training input must not go through the Spark driver")

    monkeypatch.setattr(DataFrame, "collect", refuse)
    monkeypatch.setattr(DataFrame, "toPandas", refuse)
    snapshot = DeltaSnapshotDataset(filepath=path).load()
    monkeypatch.undo()
    DeltaTableDataset(filepath=path).save(silver_frame(spark, silver_rows(5, offset=100)))

    assert (snapshot.version, snapshot.num_rows) == (0, 60)
    assert snapshot.split_counts == {"test": 12, "train": 36, "val": 12}
    dataset = to_tf_dataset(snapshot, ImageColumns(SIZE), batch_size=7, split="train")
    labels = np.concatenate([y.numpy() for _, y in dataset])
    assert len(labels) == 36  # version 0's rows, not the later overwrite's 5
    assert DeltaSnapshotDataset(filepath=path).load().version == 1


def test_snapshot_of_a_missing_table_is_a_clear_error(spark: SparkSession, tmp_path: Path) -> None:
    from kedro.io.core import DatasetError

    with pytest.raises(DatasetError, match="does not exist yet"):
        DeltaSnapshotDataset(filepath=str(tmp_path / "nothing")).load()


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
    from keras_lakehouse.training.loader import ImageColumns
    from keras_lakehouse.training.models import build_cnn, compile_model
    from keras_lakehouse.params import FitParams
    from keras_lakehouse.training.job import evaluate, make_strategy, train
    from keras_lakehouse.training.spec import TrainingJob

    files, counts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    snapshot = DeltaSnapshot("t", 0, tuple(files), sum(counts.values()), counts)
    strategy = make_strategy("mirrored", num_devices=2)

    def build():
        model = build_cnn(image_size=8, num_classes=3, filters=(8,), dense_units=8)
        return compile_model(model, optimizer="adam", learning_rate=0.02)

    fit = FitParams(epochs=8, batch_size=8, optimizer="adam", learning_rate=0.02,
                    early_stopping_patience=8, shuffle_buffer=32)
    job = TrainingJob(name="cnn", build=build, decode=ImageColumns(8), fit=fit, seed=1)
    model, history = train(job, snapshot, strategy="mirrored", num_devices=2, num_workers=1)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "devices": list(strategy.extended.worker_devices),
                      "epochs": len(history["loss"]), **evaluate(job, model, snapshot)}))
    """
)


@pytest.mark.slow  # its own process: TensorFlow splits the CPU before it starts
def test_mirrored_strategy_trains_on_two_logical_cpus(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "silver")
    DeltaTableDataset(filepath=path).save(silver_frame(spark, silver_rows(150)))
    snapshot = DeltaSnapshotDataset(filepath=path).load()
    # Logical devices must be set before TensorFlow starts: a fresh interpreter.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MIRRORED_SCRIPT,
            json.dumps(list(snapshot.files)),
            json.dumps(snapshot.split_counts),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert len(result["devices"]) == 2
    assert result["test_accuracy"] >= 0.9


def test_failed_training_marks_its_run_failed() -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        training_run("cnn", params={"a": 1}, tags={}) as run,
    ):
        raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_params_are_flattened_for_mlflow() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_same_seed_twice_gives_the_same_metrics(spark: SparkSession, tmp_path: Path) -> None:
    from keras_lakehouse.params import FitParams
    from keras_lakehouse.training.job import evaluate, train
    from keras_lakehouse.training.models import build_cnn, compile_model
    from keras_lakehouse.training.spec import TrainingJob

    path = str(tmp_path / "silver")
    DeltaTableDataset(filepath=path).save(silver_frame(spark, silver_rows(90)))
    snapshot = DeltaSnapshotDataset(filepath=path).load()
    fit = FitParams(
        epochs=3,
        batch_size=8,
        optimizer="adam",
        learning_rate=0.01,
        early_stopping_patience=3,
        shuffle_buffer=16,
    )

    def build():
        model = build_cnn(image_size=SIZE, num_classes=3, filters=(4,), dense_units=4)
        return compile_model(model, optimizer="adam", learning_rate=0.01)

    job = TrainingJob(name="cnn", build=build, decode=ImageColumns(SIZE), fit=fit, seed=3)
    runs = []
    for _ in range(2):
        model, history = train(job, snapshot, strategy="default", num_devices=1, num_workers=1)
        runs.append({**evaluate(job, model, snapshot), "val_loss": history["val_loss"][-1]})
    for key in runs[0]:
        assert runs[1][key] == pytest.approx(runs[0][key], abs=0.01), key


def test_multi_worker_strategy_shares_the_global_batch_among_the_workers(monkeypatch) -> None:
    """``strategy: multi_worker`` hands the job to the barrier-mode trainer with each worker's
    share of the global batch (the workers themselves: tests/training/test_distributed.py)."""
    from keras_lakehouse.params import FitParams
    from keras_lakehouse.training import job as job_module
    from keras_lakehouse.training.job import train
    from keras_lakehouse.training.spec import TrainingJob

    calls = []

    def trainer(job, snapshot, *, num_workers, allow_open_grpc_ports_locally):
        calls.append((job.fit.batch_size, snapshot, num_workers, allow_open_grpc_ports_locally))
        return "model", "history"

    monkeypatch.setattr(job_module, "train_multi_worker", trainer)
    fit = FitParams(
        epochs=1,
        batch_size=32,
        optimizer="adam",
        learning_rate=0.01,
        early_stopping_patience=1,
        shuffle_buffer=8,
    )
    job = TrainingJob(name="cnn", build=lambda: None, decode=ImageColumns(8), fit=fit, seed=3)
    result = train(
        job,
        "snapshot",
        strategy="multi_worker",
        num_devices=1,
        num_workers=4,
        allow_open_grpc_ports_locally=True,
    )
    assert result == ("model", "history")
    assert calls == [(8, "snapshot", 4, True)]

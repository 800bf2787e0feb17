"""Multi-worker training across Spark barrier tasks (two workers on the local[2] session)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.params import FitParams
from keras_lakehouse.training.distributed import (
    HISTORY_FILE,
    HISTORY_KEYS,
    MODEL_FILE,
    WORKER_MODULE,
    WorkerReport,
    check_in_sync,
    check_task_slots,
    tf_config,
    train_multi_worker,
)
from keras_lakehouse.training.job import evaluate, train
from keras_lakehouse.training.loader import ImageColumns
from keras_lakehouse.training.models import build_cnn, compile_model
from keras_lakehouse.training.spec import TrainingJob

IMAGE_SIZE = 16
NUM_CLASSES = 3
ROWS_PER_FILE = 180
FILES = 2
SPLITS = ("train", "train", "train", "train", "val", "test")  # by row position: 4:1:1


def _image(label: int, rng: np.random.Generator) -> bytes:
    """Noise, with the third of the rows that the label picks made bright."""
    pixels = rng.integers(0, 80, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    bounds = np.linspace(0, IMAGE_SIZE, NUM_CLASSES + 1).astype(int)
    pixels[bounds[label] : bounds[label + 1]] += 150
    return pixels.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> DeltaSnapshot:
    folder = tmp_path_factory.mktemp("images_silver")
    rng = np.random.default_rng(0)
    files, splits = [], []
    for number in range(FILES):
        labels = rng.integers(0, NUM_CLASSES, size=ROWS_PER_FILE)
        split = [SPLITS[row % len(SPLITS)] for row in range(ROWS_PER_FILE)]
        table = pa.table(
            {
                "image": pa.array([_image(int(label), rng) for label in labels], pa.binary()),
                "label_index": pa.array(labels, pa.int32()),
                "split": pa.array(split, pa.string()),
            }
        )
        path = folder / f"part-{number}.parquet"
        pq.write_table(table, path)
        files.append(f"file:{path}")
        splits += split
    return DeltaSnapshot(
        location="test",
        version=0,
        files=tuple(files),
        num_rows=len(splits),
        split_counts={name: splits.count(name) for name in ("train", "val", "test")},
    )


@pytest.fixture(scope="module")
def job() -> TrainingJob:
    return TrainingJob(
        name="cnn",
        build=lambda: compile_model(
            build_cnn(
                image_size=IMAGE_SIZE,
                num_classes=NUM_CLASSES,
                filters=[8, 16],
                dense_units=16,
                batch_norm=False,
            ),
            optimizer="adam",
            learning_rate=0.01,
        ),
        decode=ImageColumns(IMAGE_SIZE),
        fit=FitParams(
            epochs=4,
            batch_size=32,
            optimizer="adam",
            learning_rate=0.01,
            early_stopping_patience=2,
            shuffle_buffer=64,
        ),
        seed=7,
    )


class _Records(logging.Handler):
    """Keeps the records of one logger (caplog is per test; the run below is per module)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def multi_worker_run(spark, job, snapshot, tmp_path_factory) -> tuple:
    model_dir = tmp_path_factory.mktemp("multi_worker_model")
    progress = logging.getLogger("keras_lakehouse.training.progress")
    handler, level = _Records(), progress.level
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        model, history = train_multi_worker(
            job,
            snapshot,
            num_workers=2,
            model_dir=str(model_dir),
            allow_open_grpc_ports_locally=True,
        )
    finally:
        progress.removeHandler(handler)
        progress.setLevel(level)
    return model, history, model_dir, [record.getMessage() for record in handler.records]


@pytest.mark.slow
def test_two_workers_train_and_return_the_chief_model(multi_worker_run, job, snapshot) -> None:
    model, history, model_dir, _ = multi_worker_run
    assert set(history) == set(HISTORY_KEYS)
    epochs = len(history["loss"])
    assert 1 <= epochs <= job.fit.epochs
    assert all(len(values) == epochs for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert (model_dir / MODEL_FILE).is_file()
    assert json.loads((model_dir / HISTORY_FILE).read_text()) == history
    probabilities = model.predict(job.evaluation_dataset(snapshot, "test"), verbose=0)
    assert probabilities.shape == (snapshot.split_counts["test"], 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_multi_worker_matches_single_worker_accuracy(multi_worker_run, job, snapshot) -> None:
    multi_model, _, _, _ = multi_worker_run
    single_model, _ = train(job, snapshot, strategy="default", num_devices=1, num_workers=1)
    multi = evaluate(job, multi_model, snapshot)["test_accuracy"]
    single = evaluate(job, single_model, snapshot)["test_accuracy"]
    assert single >= 0.9
    assert multi >= 0.9
    assert abs(multi - single) <= 0.03


def test_more_workers_than_task_slots_is_refused(spark, job, snapshot) -> None:
    with pytest.raises(
        ValueError, match="num_workers=3 needs 3 Spark task slots; this session has 2"
    ):
        train_multi_worker(job, snapshot, num_workers=3, allow_open_grpc_ports_locally=True)


def test_task_slot_check_rejects_zero_workers() -> None:
    with pytest.raises(ValueError, match="num_workers must be at least 1"):
        check_task_slots(0, task_slots=2)


def test_sync_check_accepts_equal_checksums() -> None:
    check_in_sync([_report(0, 12.3456789), _report(1, 12.3456789 * (1 + 1e-7))])


def test_sync_check_raises_when_workers_drift_apart() -> None:
    with pytest.raises(RuntimeError, match="fell out of sync"):
        check_in_sync([_report(0, 12.3456), _report(1, 12.4)])


def test_sync_check_raises_without_reports() -> None:
    with pytest.raises(RuntimeError, match="one report per worker"):
        check_in_sync([])


def test_tf_config_names_every_worker_and_this_task() -> None:
    config = tf_config(["127.0.0.1:1001", "127.0.0.1:1002"], 1)
    assert config == {
        "cluster": {"worker": ["127.0.0.1:1001", "127.0.0.1:1002"]},
        "task": {"type": "worker", "index": 1},
    }


def test_without_a_spark_session_the_error_says_so(monkeypatch, job, snapshot) -> None:
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    with pytest.raises(RuntimeError, match="needs an active Spark session"):
        train_multi_worker(job, snapshot, num_workers=2, allow_open_grpc_ports_locally=True)


@pytest.mark.slow
def test_the_driver_logs_each_epoch_once_from_the_chief(multi_worker_run, job) -> None:
    _, history, _, lines = multi_worker_run
    epochs = len(history["loss"])
    epoch_lines = [line for line in lines if line.startswith(f"{job.name} epoch ")]
    assert len(epoch_lines) == epochs  # two workers ran, each epoch is told once
    for number, line in enumerate(epoch_lines, start=1):
        assert line.startswith(
            f"{job.name} epoch {number}/{job.fit.epochs}: "
            f"loss {history['loss'][number - 1]:.4f}, "
            f"val_loss {history['val_loss'][number - 1]:.4f}, "
            f"val_accuracy {history['val_accuracy'][number - 1]:.4f} ("
        )
    stopped = [line for line in lines if "stopped early" in line]
    assert len(stopped) == (1 if epochs < job.fit.epochs else 0)


def test_the_worker_module_runs_fresh_and_the_task_side_never_starts_tensorflow() -> None:
    """A Spark Python worker imports ``barrier_task`` (and so the package): no TensorFlow there,
    and the package leaves the worker module out, so ``python -m`` runs it fresh."""
    script = textwrap.dedent(
        """
        import importlib.util, json, sys
        import keras_lakehouse.training.distributed.barrier_task as task
        watched = ("tensorflow", "keras", task.WORKER_MODULE)
        print(json.dumps({
            "modules": sorted(name for name in watched if name in sys.modules),
            "found": importlib.util.find_spec(task.WORKER_MODULE) is not None,
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"modules": [], "found": True}
    assert WORKER_MODULE == "keras_lakehouse.training.distributed.worker"


def _report(index: int, checksum: float) -> WorkerReport:
    history = {key: [0.5] for key in HISTORY_KEYS}
    return WorkerReport(
        index=index,
        address=f"127.0.0.1:{9000 + index}",
        checksum=checksum,
        history=history,
        epoch_seconds=[1.0],
        best_epoch=1,
        stopped_early=False,
    )


@pytest.mark.slow
def test_a_failing_worker_fails_the_run_instead_of_hanging(spark, job, snapshot) -> None:
    def build_fails_on_worker_one():  # runs in each worker process, TF_CONFIG set
        if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
            raise RuntimeError("worker one fails on purpose")
        return job.build()

    failing = dataclasses.replace(job, build=build_fails_on_worker_one)
    with pytest.raises(Exception, match=r"(?s)TensorFlow worker 1 .*fails on purpose"):
        train_multi_worker(failing, snapshot, num_workers=2, allow_open_grpc_ports_locally=True)


@pytest.mark.usefixtures("spark")  # the master it checks is the active session's
def test_multi_worker_on_a_local_master_needs_the_opt_in_naming_the_risk(job, snapshot) -> None:
    with pytest.raises(ValueError, match=r"unauthenticated.*allow_open_grpc_ports_locally=true"):
        train_multi_worker(job, snapshot, num_workers=2)

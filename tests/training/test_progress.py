"""One log line per epoch per model from ``train`` (Keras ``fit``), and no Keras progress bars."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import keras
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.params import FitParams
from keras_lakehouse.training.job import EpochLogger, train
from keras_lakehouse.training.loader import ImageColumns
from keras_lakehouse.training.models import build_cnn, compile_model
from keras_lakehouse.training.spec import TrainingJob

PROGRESS = "keras_lakehouse.training.progress"
SIZE = 8
ROWS = 60
SPLITS = ("train", "train", "train", "val", "test")
SECONDS = re.compile(r" \(\d+\.\d s\)$")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> DeltaSnapshot:
    """Random pixels and labels in one Parquet file: enough for a couple of epochs."""
    rng = np.random.default_rng(0)
    splits = [SPLITS[row % len(SPLITS)] for row in range(ROWS)]
    table = pa.table(
        {
            "image": pa.array(
                [rng.integers(0, 256, SIZE * SIZE * 3, dtype=np.uint8).tobytes() for _ in splits],
                pa.binary(),
            ),
            "label_index": pa.array(rng.integers(0, 3, ROWS), pa.int32()),
            "split": pa.array(splits, pa.string()),
        }
    )
    path = Path(tmp_path_factory.mktemp("silver")) / "part-0.parquet"
    pq.write_table(table, path)
    counts = {name: splits.count(name) for name in ("train", "val", "test")}
    return DeltaSnapshot("test", 0, (f"file:{path}",), ROWS, counts)


def _job(*, epochs: int, patience: int, learning_rate: float) -> TrainingJob:
    def build() -> keras.Model:
        model = build_cnn(
            image_size=SIZE, num_classes=3, filters=(4,), dense_units=4, batch_norm=False
        )
        if learning_rate == 0:  # weights never move: val_loss never improves after epoch 1
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=0.0),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            return model
        return compile_model(model, optimizer="adam", learning_rate=learning_rate)

    fit = FitParams(
        epochs=epochs,
        batch_size=8,
        optimizer="adam",
        learning_rate=max(learning_rate, 1e-3),
        early_stopping_patience=patience,
        shuffle_buffer=16,
    )
    return TrainingJob(name="cnn", build=build, decode=ImageColumns(SIZE), fit=fit, seed=1)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == PROGRESS]


def test_fit_logs_one_line_per_epoch_and_prints_no_progress_bar(
    snapshot: DeltaSnapshot,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    job = _job(epochs=2, patience=5, learning_rate=0.01)
    _, history = train(job, snapshot, strategy="default", num_devices=1, num_workers=1)
    lines = _lines(caplog)
    assert len(history["loss"]) == 2
    assert len(lines) == 2
    for epoch, line in enumerate(lines, start=1):
        at = epoch - 1
        assert line.startswith(
            f"cnn epoch {epoch}/2: loss {history['loss'][at]:.4f}, "
            f"val_loss {history['val_loss'][at]:.4f}, "
            f"val_accuracy {history['val_accuracy'][at]:.4f}"
        )
        assert SECONDS.search(line), line
    printed = capsys.readouterr().out
    assert "━" not in printed
    assert "step" not in printed
    assert "Epoch" not in printed


def test_early_stopping_is_told_in_one_line(
    snapshot: DeltaSnapshot,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    job = _job(epochs=5, patience=1, learning_rate=0.0)
    _, history = train(job, snapshot, strategy="default", num_devices=1, num_workers=1)
    lines = _lines(caplog)
    assert len(history["loss"]) == 2
    assert [line.split(":")[0] for line in lines[:2]] == ["cnn epoch 1/5", "cnn epoch 2/5"]
    assert lines[2:] == ["cnn stopped early after epoch 2 (best val_loss at epoch 1)"]
    assert "early stopping" not in capsys.readouterr().out  # Keras' own message stays silent


def test_an_epoch_line_is_not_an_early_stop_when_the_last_epoch_ran(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    stop = keras.callbacks.EarlyStopping()
    stop.stopped_epoch, stop.best_epoch = 2, 0  # patience ran out on the last of 3 epochs
    EpochLogger("lstm", 3, stop).on_train_end()
    assert _lines(caplog) == []
    stop.stopped_epoch = 1
    EpochLogger("lstm", 3, stop).on_train_end()
    assert _lines(caplog) == ["lstm stopped early after epoch 2 (best val_loss at epoch 1)"]

"""The multi-worker epoch loop (``fit_epochs``) and the driver's epoch lines, without processes."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from keras_lakehouse.training.distributed import (
    HISTORY_KEYS,
    WorkerReport,
    fit_epochs,
    log_run,
)

PROGRESS = "keras_lakehouse.training.progress"


class _ScriptedModel:
    """Weights are the number of epochs trained so far."""

    def __init__(self) -> None:
        self.epochs = 0
        self.restored: list[np.ndarray] | None = None

    def get_weights(self) -> list[np.ndarray]:
        return [np.array([self.epochs])]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.restored = weights


class _ScriptedLoop:
    """Validation losses come from a script, one per epoch."""

    def __init__(self, val_losses: list[float]) -> None:
        self.model = _ScriptedModel()
        self._val_losses = iter(val_losses)
        self.steps: list[int] = []

    def train_epoch(self, steps: int) -> dict[str, float]:
        self.steps.append(steps)
        self.model.epochs += 1
        return {"loss": 1.0 / self.model.epochs, "accuracy": 0.5}

    def evaluate(self) -> dict[str, float]:
        return {"loss": next(self._val_losses), "accuracy": 0.5}


def test_early_stopping_restores_the_best_epoch() -> None:
    loop = _ScriptedLoop([1.0, 0.5, 0.6, 0.7, 0.4])
    result = fit_epochs(loop, name="cnn", steps=3, epochs=5, patience=2)
    assert result.history["val_loss"] == [1.0, 0.5, 0.6, 0.7]
    assert set(result.history) == set(HISTORY_KEYS)
    assert loop.steps == [3, 3, 3, 3]
    assert loop.model.restored == [np.array([2])]
    assert (result.best_epoch, result.stopped_early) == (2, True)
    assert len(result.epoch_seconds) == 4


def test_patience_zero_stops_at_the_first_regression_but_not_after_epoch_one() -> None:
    loop = _ScriptedLoop([1.0, 2.0, 0.1])
    result = fit_epochs(loop, name="cnn", steps=1, epochs=3, patience=0)
    assert result.history["val_loss"] == [1.0, 2.0]
    assert loop.model.restored == [np.array([1])]
    assert (result.best_epoch, result.stopped_early) == (1, True)


def test_without_early_stop_every_epoch_runs_and_the_best_is_kept() -> None:
    loop = _ScriptedLoop([0.9, 0.8, 0.85])
    result = fit_epochs(loop, name="cnn", steps=1, epochs=3, patience=5)
    assert len(result.history["loss"]) == 3
    assert loop.model.restored == [np.array([2])]
    assert (result.best_epoch, result.stopped_early) == (2, False)


def test_patience_running_out_on_the_last_epoch_is_not_an_early_stop() -> None:
    loop = _ScriptedLoop([0.5, 0.6, 0.7])
    result = fit_epochs(loop, name="cnn", steps=1, epochs=3, patience=2)
    assert len(result.history["loss"]) == 3
    assert (result.best_epoch, result.stopped_early) == (1, False)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == PROGRESS]


def test_fit_epochs_logs_one_line_per_epoch_and_the_early_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    loop = _ScriptedLoop([1.0, 0.5, 0.6, 0.7, 0.4])
    result = fit_epochs(loop, name="cnn", steps=3, epochs=5, patience=2)
    lines = _lines(caplog)
    assert len(lines) == 5  # four epochs, then the early stop
    for epoch, line in enumerate(lines[:4], start=1):
        expected = (
            f"cnn epoch {epoch}/5: loss {1.0 / epoch:.4f}, "
            f"val_loss {result.history['val_loss'][epoch - 1]:.4f}, val_accuracy 0.5000 "
        )
        assert line.startswith(expected)
        assert re.search(r"\(\d+\.\d s\)$", line)
    assert lines[4] == "cnn stopped early after epoch 4 (best val_loss at epoch 2)"


def test_the_driver_logs_the_chief_epochs_once_however_many_workers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = {
        "loss": [0.9, 0.7, 0.8],
        "accuracy": [0.5, 0.6, 0.6],
        "val_loss": [0.8, 0.6, 0.65],
        "val_accuracy": [0.55, 0.7, 0.68],
    }
    reports = [
        WorkerReport(
            index=index,
            address=f"127.0.0.1:{9000 + index}",
            checksum=1.0,
            history=history,
            epoch_seconds=[2.04, 1.5, 1.46],
            best_epoch=2,
            stopped_early=True,
            output="worker log",
        )
        for index in range(2)
    ]
    caplog.set_level(logging.INFO)
    log_run("lstm", reports, epochs=10)
    assert _lines(caplog) == [
        "lstm epoch 1/10: loss 0.9000, val_loss 0.8000, val_accuracy 0.5500 (2.0 s)",
        "lstm epoch 2/10: loss 0.7000, val_loss 0.6000, val_accuracy 0.7000 (1.5 s)",
        "lstm epoch 3/10: loss 0.8000, val_loss 0.6500, val_accuracy 0.6800 (1.5 s)",
        "lstm stopped early after epoch 3 (best val_loss at epoch 2)",
    ]
    assert not any("worker log" in record.getMessage() for record in caplog.records)


def test_a_history_without_one_duration_per_epoch_is_refused() -> None:
    report = WorkerReport(
        index=0,
        address="127.0.0.1:9000",
        checksum=1.0,
        history={key: [0.5, 0.4] for key in HISTORY_KEYS},
        epoch_seconds=[1.0],
        best_epoch=2,
        stopped_early=False,
    )
    with pytest.raises(ValueError, match=r"one duration .* per epoch. Received: 1 durations"):
        log_run("cnn", [report], epochs=2)

"""The epoch loop of a multi-worker run: early stopping on ``val_loss``, like Keras' callback.

Plain Python: what one epoch does (``EpochLoop``) is the training process's business
(``keras_lakehouse.training.distributed.loop``), so the loop's logic is tested without TensorFlow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from keras_lakehouse.training.progress import History, log_early_stop, log_epoch

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class EpochLoop(Protocol):
    """What ``fit_epochs`` drives: a model, one training epoch, one validation pass."""

    model: Any

    def train_epoch(self, steps: int) -> dict[str, float]:
        """Train ``steps`` steps; ``loss`` and ``accuracy`` over the epoch."""
        ...

    def evaluate(self) -> dict[str, float]:
        """``loss`` and ``accuracy`` over the whole validation split."""
        ...


@dataclass(frozen=True)
class FitResult:
    """What ``fit_epochs`` ran: the history, each epoch's duration, and where it stopped."""

    history: History
    epoch_seconds: list[float]
    best_epoch: int  # the epoch whose weights were restored, from 1 (0: none improved)
    stopped_early: bool


def fit_epochs(loop: EpochLoop, *, name: str, steps: int, epochs: int, patience: int) -> FitResult:
    """Run epochs of ``steps`` steps, early stopping on ``val_loss``, like Keras' callback.

    Training stops once ``val_loss`` has not improved for ``patience`` epochs (never after the
    first epoch). Unlike ``EarlyStopping(restore_best_weights=True)``, the best weights are
    restored even when every epoch ran. Each epoch is logged in one line
    (``keras_lakehouse.training.progress``), and early stopping in one more.

    Args:
        loop: What trains and evaluates one epoch.
        name: The model, for the log lines.
        steps: Steps per epoch.
        epochs: The most epochs to run.
        patience: Epochs without improvement of ``val_loss`` before stopping.

    Returns:
        The history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch run), the
        duration of each epoch, the epoch kept and whether training stopped early.
    """
    history: History = {key: [] for key in HISTORY_KEYS}
    seconds: list[float] = []
    best_loss, best_weights, best_epoch, wait = math.inf, None, 0, 0
    stopped_early = False
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        train = loop.train_epoch(steps)
        val = loop.evaluate()
        seconds.append(time.perf_counter() - started)
        for key, value in {**train, **{f"val_{k}": v for k, v in val.items()}}.items():
            history[key].append(value)
        log_epoch(name, epoch, epochs, {k: v[-1] for k, v in history.items()}, seconds[-1])
        if val["loss"] < best_loss:
            best_loss, best_weights, best_epoch, wait = (
                val["loss"],
                loop.model.get_weights(),
                epoch,
                0,
            )
            continue
        wait += 1
        if wait >= patience and epoch > 1:
            stopped_early = epoch < epochs
            if stopped_early:
                log_early_stop(name, stopped_after=epoch, best_epoch=best_epoch)
            break
    if best_weights is not None:
        loop.model.set_weights(best_weights)
    return FitResult(history, seconds, best_epoch, stopped_early)

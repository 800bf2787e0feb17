"""One log line per epoch per model, the same for Keras ``fit`` and for multi-worker training.

For example::

    cnn epoch 3/25: loss 0.4120, val_loss 0.3980, val_accuracy 0.8710 (4.2 s)
    cnn stopped early after epoch 7 (best val_loss at epoch 4)

Plain Python, no TensorFlow: the Spark driver uses it to log the workers' epochs, and the Spark
Python workers that import the driver's package never start TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

History = dict[str, list[float]]  # metric name → one value per epoch run

REPORTED_METRICS = ("loss", "val_loss", "val_accuracy")  # those present are shown, in this order
MONITOR = "val_loss"  # what early stopping watches, on both training paths


def describe_epoch(metrics: Mapping[str, float]) -> str:
    """``loss 0.4120, val_loss 0.3980, val_accuracy 0.8710``: the reported metrics present."""
    return ", ".join(f"{key} {metrics[key]:.4f}" for key in REPORTED_METRICS if key in metrics)


def log_epoch(
    name: str, epoch: int, epochs: int, metrics: Mapping[str, float], seconds: float
) -> None:
    """Log one INFO line for one finished epoch.

    Args:
        name: The model (``cnn``, ``lstm``).
        epoch: The epoch just finished, counted from 1.
        epochs: The most epochs this run may take (``fit.epochs``).
        metrics: The epoch's metrics (``loss``, ``val_loss``, ``val_accuracy``, ...).
        seconds: How long the epoch took, validation included.
    """
    logger.info(
        "%s epoch %d/%d: %s (%.1f s)", name, epoch, epochs, describe_epoch(metrics), seconds
    )


def log_early_stop(name: str, *, stopped_after: int, best_epoch: int) -> None:
    """Log one INFO line saying that training stopped before its last epoch.

    Args:
        name: The model.
        stopped_after: The last epoch run, counted from 1.
        best_epoch: The epoch whose weights were kept, counted from 1.
    """
    logger.info(
        "%s stopped early after epoch %d (best %s at epoch %d)",
        name,
        stopped_after,
        MONITOR,
        best_epoch,
    )


def log_epochs(name: str, history: History, seconds: Sequence[float], *, epochs: int) -> None:
    """Log one line per epoch of a finished run (the driver's view of a multi-worker run).

    Args:
        name: The model.
        history: Metric name → one value per epoch run.
        seconds: The duration of each epoch run.
        epochs: The most epochs the run could take.

    Raises:
        ValueError: ``seconds`` and some metric of ``history`` differ in length.
    """
    lengths = {key: len(values) for key, values in history.items()}
    if any(length != len(seconds) for length in lengths.values()):
        raise ValueError(
            f"Expected one duration and one value of each metric per epoch. Received: "
            f"{len(seconds)} durations, metric lengths {lengths}"
        )
    for position, took in enumerate(seconds):
        metrics = {key: values[position] for key, values in history.items()}
        log_epoch(name, position + 1, epochs, metrics, took)

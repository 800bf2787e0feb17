"""Training under a ``tf.distribute`` strategy, fed by the streaming loader.

``TrainingJob`` (``keras_lakehouse.training.spec``) says what to train; ``train`` runs it on one
device, on mirrored devices with ``model.fit``, or across Spark barrier tasks with the multi-worker
custom step of ``keras_lakehouse.training.distributed``. Either way, each epoch is logged in one
line (``keras_lakehouse.training.progress``) and Keras prints no progress bars.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace
from typing import Any

import keras

from keras_lakehouse import nvidia_driver_present
from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.training.distributed import train_multi_worker
from keras_lakehouse.training.progress import MONITOR, History, log_early_stop, log_epoch
from keras_lakehouse.training.spec import TrainingJob

logger = logging.getLogger(__name__)

__all__ = [
    "EpochLogger",
    "History",
    "TrainingJob",
    "evaluate",
    "make_strategy",
    "train",
    "use_mixed_precision_on_gpu",
]


class EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch of ``model.fit``, and one more when early stopping ends it.

    Args:
        name: The model, first word of each line.
        epochs: The ``epochs`` given to ``fit``.
        stop: The run's early-stopping callback, to say when it stopped and which epoch it kept.
    """

    def __init__(
        self, name: str, epochs: int, stop: keras.callbacks.EarlyStopping | None = None
    ) -> None:
        super().__init__()
        self.name = name
        self.epochs = epochs
        self._stop = stop
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the epoch's clock."""
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Log the epoch's metrics and duration (validation included)."""
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        log_epoch(self.name, epoch + 1, self.epochs, metrics, time.perf_counter() - self._started)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Say so when early stopping ended the run before its last epoch."""
        stop = self._stop
        # Keras also sets stopped_epoch when patience runs out on the last epoch: not early.
        if stop is not None and 0 < stop.stopped_epoch < self.epochs - 1:
            log_early_stop(
                self.name, stopped_after=stop.stopped_epoch + 1, best_epoch=stop.best_epoch + 1
            )


def make_strategy(kind: str, *, num_devices: int) -> Any:
    """``default``: one device; ``mirrored``: every GPU, or ``num_devices`` logical CPUs.

    Raises:
        ValueError: ``kind`` is neither ``default`` nor ``mirrored``.
        RuntimeError: The CPU cannot be split any more (TensorFlow already started).
    """
    import tensorflow as tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind != "mirrored":
        raise ValueError(
            f"make_strategy builds 'default' or 'mirrored' strategies. Received: {kind!r} "
            "('multi_worker' runs through keras_lakehouse.training.distributed)."
        )
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    # Reading the configuration does not start the runtime; listing logical devices would.
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) < num_devices:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
            )
        except RuntimeError as error:
            raise RuntimeError(
                f"Cannot split the CPU into {num_devices} logical devices: TensorFlow was "
                "initialised before the strategy was built. Start a new process."
            ) from error
    logical = tf.config.list_logical_devices("CPU")
    devices = [device.name for device in logical[:num_devices]]
    return tf.distribute.MirroredStrategy(devices)


def use_mixed_precision_on_gpu() -> bool:
    """Switch Keras to ``mixed_float16`` when a GPU is present; say whether it did.

    Where an NVIDIA driver is loaded but TensorFlow lists no GPU, warns (once per process): the
    usual cause, a missing CUDA library, is a C++ message that ``TF_CPP_MIN_LOG_LEVEL`` hides.
    TensorFlow is first imported by the training nodes, so this is where a run can tell.
    """
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        if nvidia_driver_present():
            _warn_gpu_unused()
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


@functools.cache
def _warn_gpu_unused() -> None:
    logger.warning(
        "An NVIDIA driver is loaded but TensorFlow sees no GPU: models train on the CPU. "
        "Run again with TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's CUDA messages."
    )


def train(
    job: TrainingJob,
    snapshot: DeltaSnapshot,
    *,
    strategy: str,
    num_devices: int,
    num_workers: int,
    allow_open_grpc_ports_locally: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, History]:
    """Train ``job`` on the train split, early-stopping on the val split.

    Args:
        job: What to train.
        snapshot: The pinned Delta snapshot to read.
        strategy: ``default``, ``mirrored`` or ``multi_worker``.
        num_devices: Replicas of a ``mirrored`` run on CPU.
        num_workers: TensorFlow workers of a ``multi_worker`` run.
        allow_open_grpc_ports_locally: Let ``multi_worker`` run on a local Spark master.
        callbacks: More Keras callbacks for ``model.fit`` (not used by ``multi_worker``).

    Returns:
        The model with the best validation weights restored, and the per-epoch history.
    """
    keras.utils.set_random_seed(job.seed)
    if strategy == "multi_worker":
        # batch_size is the global batch: each worker takes its share, so the number of steps,
        # the learning rate and the results stay those of a single-worker run.
        per_worker = max(1, job.fit.batch_size // num_workers)
        sharded = replace(job, fit=job.fit.model_copy(update={"batch_size": per_worker}))
        return train_multi_worker(
            sharded,
            snapshot,
            num_workers=num_workers,
            allow_open_grpc_ports_locally=allow_open_grpc_ports_locally,
        )
    distribution = make_strategy(strategy, num_devices=num_devices)
    with distribution.scope():
        model = job.build()
    train_data, val_data = job.datasets(snapshot)
    stop = keras.callbacks.EarlyStopping(
        monitor=MONITOR, patience=job.fit.early_stopping_patience, restore_best_weights=True
    )
    logger.info(
        "Training %s on %d replica(s) (%s) for up to %d epochs.",
        job.name,
        distribution.num_replicas_in_sync,
        strategy,
        job.fit.epochs,
    )
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=job.fit.epochs,
        callbacks=[stop, EpochLogger(job.name, job.fit.epochs, stop), *(callbacks or [])],
        shuffle=False,  # the loader shuffles
        verbose=0,  # one log line per epoch instead (EpochLogger)
    )
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


def evaluate(job: TrainingJob, model: keras.Model, snapshot: DeltaSnapshot) -> dict[str, float]:
    """Loss and accuracy on the test split.

    Args:
        job: The job that trained ``model`` (how to read and batch the split).
        model: The trained model.
        snapshot: The pinned Delta snapshot.

    Returns:
        ``test_loss`` and ``test_accuracy``.
    """
    loss, accuracy = model.evaluate(job.evaluation_dataset(snapshot, "test"), verbose=0)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}

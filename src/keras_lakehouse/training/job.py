"""Training under a ``tf.distribute`` strategy, fed by the streaming loader.

``TrainingJob`` says what to train (a builder, the columns, the fit settings); ``train`` runs it
on one device, on mirrored devices with ``model.fit``, or across Spark barrier tasks with the
multi-worker custom step in ``keras_lakehouse.training.distributed``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import keras

from keras_lakehouse.params import AugmentationParams, FitParams
from keras_lakehouse.training.loader import DeltaSnapshot, ImageColumns, TextColumns, to_tf_dataset

logger = logging.getLogger(__name__)

History = dict[str, list[float]]


@dataclass(frozen=True)
class TrainingJob:
    """One model to train: everything a worker process needs, picklable."""

    name: str
    build: Callable[[], keras.Model]  # builds and compiles, inside the strategy's scope
    decode: ImageColumns | TextColumns
    fit: FitParams
    seed: int
    augmentation: AugmentationParams | None = None

    def datasets(self, snapshot: DeltaSnapshot, *, shard: tuple[int, int] = (0, 1)) -> tuple:
        """Train (shuffled, augmented) and validation datasets over the pinned snapshot."""
        train = to_tf_dataset(
            snapshot,
            self.decode,
            batch_size=self.fit.batch_size,
            split="train",
            shuffle_buffer=self.fit.shuffle_buffer,
            seed=self.seed,
            shard=shard,
            augment=augmenter(self.augmentation, self.seed),
        )
        return train, self.evaluation_dataset(snapshot, "val")

    def evaluation_dataset(self, snapshot: DeltaSnapshot, split: str) -> Any:
        """A split read in file order, without augmentation (val, test, inference)."""
        return to_tf_dataset(snapshot, self.decode, batch_size=self.fit.batch_size, split=split)

    def steps_per_epoch(self, snapshot: DeltaSnapshot, workers: int = 1) -> int:
        """Batches per epoch for each of ``workers`` shards of the train split."""
        rows = snapshot.split_counts.get("train", 0)
        return max(1, math.ceil(rows / (self.fit.batch_size * workers)))


def augmenter(settings: AugmentationParams | None, seed: int) -> Callable[[Any], Any] | None:
    """A batch function (uint8 → uint8) applying the augmentation layers, or ``None``."""
    from keras_lakehouse.training.models import build_augmentation

    if settings is None:
        return None
    layers = build_augmentation(
        shear=settings.shear,
        zoom=settings.zoom,
        horizontal_flip=settings.horizontal_flip,
        seed=seed,
    )
    if layers is None:
        return None

    def augment(images: Any) -> Any:
        import tensorflow as tf

        moved = layers(tf.cast(images, "float32"), training=True)
        return tf.cast(tf.clip_by_value(tf.round(moved), 0, 255), "uint8")

    return augment


def make_strategy(kind: str, *, num_devices: int) -> Any:
    """``default``: one device; ``mirrored``: every GPU, or ``num_devices`` logical CPUs."""
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
    """Switch Keras to ``mixed_float16`` when a GPU is present; say whether it did."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


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

    Returns:
        The model with the best validation weights restored, and the per-epoch history.
    """
    keras.utils.set_random_seed(job.seed)
    if strategy == "multi_worker":
        from keras_lakehouse.training.distributed import train_multi_worker

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
        monitor="val_loss", patience=job.fit.early_stopping_patience, restore_best_weights=True
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
        callbacks=[stop, *(callbacks or [])],
        shuffle=False,  # the loader shuffles
        verbose=2 if os.environ.get("KL_VERBOSE_FIT") else 0,
    )
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


def evaluate(job: TrainingJob, model: keras.Model, snapshot: DeltaSnapshot) -> dict[str, float]:
    """Loss and accuracy on the test split."""
    loss, accuracy = model.evaluate(job.evaluation_dataset(snapshot, "test"), verbose=0)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}

"""What to train: ``TrainingJob``, the one description that every training path and process uses.

Both ``keras_lakehouse.training.job`` (which runs a job) and the multi-worker processes of
``keras_lakehouse.training.distributed`` import it from here, so neither imports the other's side.
Keras loads when a job builds its model or augmentation, not with this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
from keras_lakehouse.params import AugmentationParams, FitParams
from keras_lakehouse.training.loader import ImageColumns, TextColumns, to_tf_dataset

if TYPE_CHECKING:
    import keras


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
        """Train (shuffled, augmented) and validation datasets over the pinned snapshot.

        Args:
            snapshot: The pinned Delta snapshot.
            shard: ``(index, count)``: this worker reads every ``count``-th train file.

        Returns:
            The train and validation ``tf.data.Dataset``.
        """
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
    """A batch function (uint8 → uint8) applying the augmentation layers, or ``None``.

    Args:
        settings: The augmentation parameters; ``None`` for none.
        seed: Seeds the random transforms.

    Returns:
        The function, or ``None`` when there is nothing to apply.
    """
    if settings is None:
        return None
    from keras_lakehouse.training.models import build_augmentation

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

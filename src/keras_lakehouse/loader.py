"""Stream a pinned Delta snapshot into training batches, never through the Spark driver.

The core (``iter_batches``) is numpy + pyarrow only, so it runs under any Keras backend;
``to_tf_dataset`` is a thin ``tf.data`` wrapper with prefetching. Memory stays flat as the table
grows: one Parquet record batch and one shuffle buffer are held at a time.

Unity Catalog: a managed table's files live in cloud storage that pyarrow cannot read with the
workspace's credentials. There, first write the silver snapshot to a Volume path (``DeltaTable
Dataset`` with ``filepath: /Volumes/<catalog>/<schema>/<volume>/images_silver``), the pattern
Petastorm's Spark converter used; a Volume is a local path on the cluster's nodes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

Batch = tuple[np.ndarray, np.ndarray]
READ_ROWS = 256  # rows per Parquet read: bounds the memory of one read


@dataclass(frozen=True)
class DeltaSnapshot:
    """The Parquet files of one Delta table version (the lineage MLflow records)."""

    location: str
    version: int
    files: tuple[str, ...]
    num_rows: int
    split_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageColumns:
    """Turns silver image rows into ``(uint8 NHWC, int32 labels)``."""

    image_size: int
    columns: tuple[str, ...] = ("image", "label_index")

    def __call__(self, batch: pa.RecordBatch) -> Batch:
        size = self.image_size
        images = batch.column("image").to_pylist()
        pixels = np.frombuffer(b"".join(images), dtype=np.uint8).reshape(-1, size, size, 3)
        return pixels, batch.column("label_index").to_numpy().astype(np.int32)


@dataclass(frozen=True)
class TextColumns:
    """Turns silver text rows into ``(int32 token ids, int32 labels)``."""

    sequence_length: int
    columns: tuple[str, ...] = ("token_ids", "label_index")

    def __call__(self, batch: pa.RecordBatch) -> Batch:
        ids = batch.column("token_ids").flatten().to_numpy(zero_copy_only=False)
        tokens = ids.astype(np.int32).reshape(-1, self.sequence_length)
        return tokens, batch.column("label_index").to_numpy().astype(np.int32)


def iter_batches(
    files: Sequence[str],
    decode: ImageColumns | TextColumns,
    *,
    batch_size: int,
    split: str | None = None,
    shuffle_buffer: int = 0,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """Yield ``(x, y)`` batches from Parquet files, one pass.

    Args:
        files: Local paths of the snapshot's Parquet files.
        decode: Turns a record batch into arrays (``ImageColumns`` or ``TextColumns``).
        batch_size: Rows per batch; the last batch may be smaller.
        split: Keep only rows of this split (``train``, ``val``, ``test``); ``None`` keeps all.
        shuffle_buffer: Rows held for shuffling (0 keeps file order). Files are shuffled too.
        seed: Seed of this pass (give each epoch its own).
        shard: ``(index, count)``: keep every ``count``-th row starting at ``index`` (one shard
            per worker in multi-worker training).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive. Received: batch_size={batch_size}")
    rng = np.random.default_rng(seed)
    order = list(files)
    if shuffle_buffer:
        rng.shuffle(order)
    buffer = _Buffer(rng if shuffle_buffer else None)
    for x, y in _rows(order, decode, split, shard):
        buffer.add(x, y)
        while len(buffer) >= shuffle_buffer + batch_size:
            yield buffer.take(batch_size)
    while len(buffer):
        yield buffer.take(min(batch_size, len(buffer)))


def to_tf_dataset(
    snapshot: DeltaSnapshot,
    decode: ImageColumns | TextColumns,
    *,
    batch_size: int,
    split: str,
    shuffle_buffer: int = 0,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    augment: Callable[[Any], Any] | None = None,
) -> Any:
    """A ``tf.data.Dataset`` over one split of the snapshot, re-read (and reshuffled with a new
    seed) at each epoch, augmented on batches when ``augment`` is given, prefetched. When the
    snapshot knows the split's row count (and the data is not sharded), the dataset knows its
    number of batches, so Keras shows progress and does not guess where an epoch ends."""
    import tensorflow as tf

    epochs = itertools.count()
    files = [local_path(name) for name in snapshot.files]

    def generate() -> Iterator[Batch]:
        return iter_batches(
            files,
            decode,
            batch_size=batch_size,
            split=split,
            shuffle_buffer=shuffle_buffer,
            seed=seed + next(epochs),
            shard=shard,
        )

    if isinstance(decode, ImageColumns):
        size = decode.image_size
        x_spec = tf.TensorSpec((None, size, size, 3), tf.uint8)
    else:
        x_spec = tf.TensorSpec((None, decode.sequence_length), tf.int32)
    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=(x_spec, tf.TensorSpec((None,), tf.int32))
    )
    rows = snapshot.split_counts.get(split)
    if rows and shard[1] == 1:
        batches = -(-rows // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    if augment is not None:
        dataset = dataset.map(
            lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def local_path(uri: str) -> str:
    """``file:/a/b`` (Spark's spelling) → ``/a/b``; ``dbfs:/Volumes/..`` → ``/Volumes/..``."""
    for prefix in ("file://", "file:", "dbfs:"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri


def _rows(
    files: Sequence[str],
    decode: ImageColumns | TextColumns,
    split: str | None,
    shard: tuple[int, int],
) -> Iterator[Batch]:
    index, count = shard
    seen = 0
    columns = [*decode.columns, "split"] if split is not None else list(decode.columns)
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, columns=columns):
            if split is not None:
                batch = batch.filter(pc.equal(batch.column("split"), split))
            if count > 1:
                positions = np.arange(seen, seen + batch.num_rows)
                seen += batch.num_rows
                batch = batch.filter(pa.array(positions % count == index))
            if batch.num_rows:
                yield decode(batch)


class _Buffer:
    """Rows waiting to be batched; random draws when shuffling, else first in, first out."""

    def __init__(self, rng: np.random.Generator | None) -> None:
        self._rng = rng
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        self._x.append(x)
        self._y.append(y)
        self._size += len(y)

    def take(self, count: int) -> Batch:
        x, y = np.concatenate(self._x), np.concatenate(self._y)
        if self._rng is None:
            picked = np.arange(count)
        else:
            picked = self._rng.choice(len(y), size=count, replace=False)
        keep = np.ones(len(y), dtype=bool)
        keep[picked] = False
        self._x, self._y, self._size = [x[keep]], [y[keep]], int(keep.sum())
        return x[picked], y[picked]

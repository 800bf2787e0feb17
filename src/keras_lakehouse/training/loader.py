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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot, local_path

Batch = tuple[np.ndarray, np.ndarray]
READ_ROWS = 256  # rows per Parquet read: bounds the memory of one read


@dataclass(frozen=True)
class ImageColumns:
    """Turns silver image rows into ``(uint8 NHWC, int32 labels)``."""

    image_size: int
    columns: tuple[str, ...] = ("image", "label_index")

    def __call__(self, batch: pa.RecordBatch) -> Batch:
        size = self.image_size
        images = batch.column("image")
        if isinstance(images, pa.ChunkedArray):
            images = images.combine_chunks()
        # The values buffer of a binary column is the images back to back: no per-row copies.
        offset_type = np.int64 if pa.types.is_large_binary(images.type) else np.int32
        offsets = np.frombuffer(images.buffers()[1], dtype=offset_type)[images.offset :]
        start, stop = int(offsets[0]), int(offsets[len(images)])
        values = np.frombuffer(images.buffers()[2], dtype=np.uint8)[start:stop]
        if stop - start != len(images) * size * size * 3:
            raise ValueError(
                f"Expected {size}x{size}x3 uint8 images in column 'image'. Received "
                f"{stop - start} bytes for {len(images)} rows."
            )
        pixels = values.reshape(-1, size, size, 3)
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


def read_split(
    snapshot: DeltaSnapshot, columns: Sequence[str], split: str, *, limit: int | None = None
) -> pa.Table:
    """Columns of one split's rows, in the order ``iter_batches`` yields them unshuffled.

    For the small things that are not model input (ids, texts for a report, an input example);
    ``limit`` stops reading once that many rows are found.
    """
    batches: list[pa.RecordBatch] = []
    found = 0
    for path in (local_path(name) for name in snapshot.files):
        reader = pq.ParquetFile(path).iter_batches(
            batch_size=READ_ROWS, columns=[*columns, "split"]
        )
        for batch in reader:
            batch = batch.filter(pc.equal(batch.column("split"), split)).select(list(columns))
            batches.append(batch)
            found += batch.num_rows
            if limit is not None and found >= limit:
                return pa.Table.from_batches(batches).slice(0, limit)
    if not batches:
        raise ValueError(f"The snapshot of {snapshot.location} has no Parquet files.")
    return pa.Table.from_batches(batches)


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
    """Rows waiting to be batched, in preallocated arrays.

    Taking a batch copies only that batch: shuffled draws are filled by moving rows from the end
    of the buffer into the holes, so the cost per batch does not grow with the buffer.
    """

    def __init__(self, rng: np.random.Generator | None) -> None:
        self._rng = rng
        self._x: np.ndarray = np.empty((0,))
        self._y: np.ndarray = np.empty((0,))
        self._start = 0  # first live row when not shuffling (first in, first out)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if not len(self._y):  # first rows: take their shape and dtype
            self._x, self._y = np.empty((0, *x.shape[1:]), x.dtype), np.empty((0,), y.dtype)
        end = self._start + self._size
        if end + len(y) > len(self._y):
            self._compact(needed=self._size + len(y))
            end = self._size
        self._x[end : end + len(y)] = x
        self._y[end : end + len(y)] = y
        self._size += len(y)

    def take(self, count: int) -> Batch:
        if self._rng is None:
            rows = slice(self._start, self._start + count)
            batch = self._x[rows].copy(), self._y[rows].copy()
            self._start += count
            self._size -= count
            return batch
        picked = self._rng.choice(self._size, size=count, replace=False)
        batch = self._x[picked], self._y[picked]  # fancy indexing copies
        tail = self._size - count
        holes = picked[picked < tail]
        movers = np.setdiff1d(np.arange(tail, self._size), picked, assume_unique=True)
        self._x[holes], self._y[holes] = self._x[movers], self._y[movers]
        self._size = tail
        return batch

    def _compact(self, *, needed: int) -> None:
        """Move the live rows to the front, growing the arrays (doubling) when they are full."""
        live = slice(self._start, self._start + self._size)
        capacity = max(needed, 2 * len(self._y))
        if capacity > len(self._y):
            x = np.empty((capacity, *self._x.shape[1:]), self._x.dtype)
            y = np.empty((capacity,), self._y.dtype)
        else:
            x, y = self._x, self._y
        x[: self._size], y[: self._size] = self._x[live], self._y[live]
        self._x, self._y, self._start = x, y, 0

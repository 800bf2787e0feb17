"""The streaming loader: Parquet files → batches, with splits, shuffling and shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot, local_path
from keras_lakehouse.training.loader import ImageColumns, TextColumns, iter_batches, to_tf_dataset

SIZE = 4


def write_images(folder: Path, files: int = 3, rows: int = 50) -> list[str]:
    paths = []
    for index in range(files):
        ids = np.arange(index * rows, (index + 1) * rows)
        table = pa.table(
            {
                # every pixel of row i holds i % 256, so a batch says which rows it holds
                "image": [bytes([int(i) % 256]) * (SIZE * SIZE * 3) for i in ids],
                "label_index": pa.array(ids % 3, pa.int32()),
                "split": ["test" if i % 5 == 0 else "train" for i in ids],
            }
        )
        path = folder / f"part-{index}.parquet"
        pq.write_table(table, path, row_group_size=16)
        paths.append(str(path))
    return paths


def rows_of(batches) -> list[int]:
    return [int(x[0, 0, 0]) for batch_x, _ in batches for x in batch_x]


def test_all_rows_of_a_split_come_once_in_file_order(tmp_path: Path) -> None:
    files = write_images(tmp_path)
    batches = list(iter_batches(files, ImageColumns(SIZE), batch_size=32, split="train"))
    assert rows_of(batches) == [i for i in range(150) if i % 5]
    assert [len(y) for _, y in batches] == [32, 32, 32, 24]
    x, y = batches[0]
    assert (x.shape, x.dtype, y.dtype) == ((32, SIZE, SIZE, 3), np.uint8, np.int32)
    assert list(y[:3]) == [1, 2, 0]  # rows 1, 2, 3


def test_shuffling_is_seeded_and_keeps_every_row(tmp_path: Path) -> None:
    files = write_images(tmp_path)

    def shuffled(seed: int) -> list[int]:
        return rows_of(
            iter_batches(
                files,
                ImageColumns(SIZE),
                batch_size=16,
                split="train",
                shuffle_buffer=40,
                seed=seed,
            )
        )

    first = shuffled(1)
    assert first == shuffled(1)
    assert first != shuffled(2)
    assert sorted(first) == [i for i in range(150) if i % 5]
    assert first != sorted(first)


def test_shards_are_disjoint_and_cover_the_split(tmp_path: Path) -> None:
    files = write_images(tmp_path)
    shards = [
        rows_of(iter_batches(files, ImageColumns(SIZE), batch_size=8, split="test", shard=(i, 2)))
        for i in range(2)
    ]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(0, 150, 5))
    assert abs(len(shards[0]) - len(shards[1])) <= 1


def test_text_columns_give_fixed_length_ids(tmp_path: Path) -> None:
    path = tmp_path / "texts.parquet"
    pq.write_table(
        pa.table(
            {
                "token_ids": pa.array([[2, 3, 0], [4, 1, 1]], pa.list_(pa.int32())),
                "label_index": pa.array([0, 1], pa.int32()),
            }
        ),
        path,
    )
    ((x, y),) = iter_batches([str(path)], TextColumns(3), batch_size=8)
    assert x.tolist() == [[2, 3, 0], [4, 1, 1]]
    assert y.tolist() == [0, 1]


def test_bad_batch_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        next(iter_batches(write_images(tmp_path), ImageColumns(SIZE), batch_size=0))


def test_tf_dataset_reshuffles_each_epoch_and_augments(tmp_path: Path) -> None:
    files = write_images(tmp_path)
    snapshot = DeltaSnapshot("t", 0, tuple(f"file:{name}" for name in files), 150)
    dataset = to_tf_dataset(
        snapshot,
        ImageColumns(SIZE),
        batch_size=10,
        split="train",
        shuffle_buffer=30,
        seed=5,
        augment=lambda images: 255 - images,
    )
    epochs = [[int(x[0, 0, 0]) for batch, _ in dataset for x in batch.numpy()] for _ in range(2)]
    assert epochs[0] != epochs[1]
    assert sorted(epochs[0]) == sorted(255 - (i % 256) for i in range(150) if i % 5)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:/tmp/a.parquet", "/tmp/a.parquet"),
        ("file:///tmp/a.parquet", "/tmp/a.parquet"),
        ("dbfs:/Volumes/c/s/v/a.parquet", "/Volumes/c/s/v/a.parquet"),
        ("/tmp/a.parquet", "/tmp/a.parquet"),
    ],
)
def test_local_path(uri: str, path: str) -> None:
    assert local_path(uri) == path


@pytest.mark.parametrize("binary_type", [pa.binary(), pa.large_binary()])
def test_image_column_is_read_without_copies_and_checked(binary_type: pa.DataType) -> None:
    images = pa.array([bytes([i]) * (SIZE * SIZE * 3) for i in range(5)], binary_type)
    batch = pa.record_batch({"image": images, "label_index": pa.array(range(5), pa.int32())})
    x, y = ImageColumns(SIZE)(batch.slice(2, 3))  # a slice starts inside the buffers
    assert [int(row[0, 0, 0]) for row in x] == [2, 3, 4]
    assert y.tolist() == [2, 3, 4]
    bad = pa.record_batch({"image": pa.array([b"abc"]), "label_index": pa.array([0], pa.int32())})
    with pytest.raises(ValueError, match=r"Expected 4x4x3 uint8 images.*Received 3 bytes"):
        ImageColumns(SIZE)(bad)

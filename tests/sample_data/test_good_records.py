"""The good records of the default sample: image formats, CSV rows, JSON lines, text signal."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from PIL import Image

from keras_lakehouse.sample_data import SampleSummary
from keras_lakehouse.sample_data.texts import JSONL_RECORDS

TEXT_LABELS = {"sports", "technology", "cooking"}
Sample = tuple[Any, SampleSummary]


def test_about_a_fifth_of_images_are_jpeg(full_sample: Sample) -> None:
    for label, paths in full_sample[0].good_images().items():
        jpegs = [path for path in paths if path.suffix == ".jpg"]
        assert len(jpegs) == len(paths) // 5, label
        with Image.open(jpegs[0]) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (64, 64), "RGB")
        with Image.open(next(path for path in paths if path.suffix == ".png")) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (64, 64), "RGB")


def test_smallest_sample_has_both_formats_in_every_class(minimum_sample: Sample) -> None:
    for label, paths in minimum_sample[0].good_images().items():
        assert {path.suffix for path in paths} == {".png", ".jpg"}, label


def test_good_csv_rows_are_well_formed(full_sample: Sample) -> None:
    rows = full_sample[0].good_csv_rows()
    assert all(len(row) == 3 for row in rows)
    assert {row[2] for row in rows} == TEXT_LABELS
    assert len({row[0] for row in rows}) == len(rows)
    assert all(re.fullmatch(r"t\d{6}", row[0]) for row in rows)
    assert len({row[1] for row in rows}) == len(rows)
    word_counts = [len(row[1].split()) for row in rows]
    assert min(word_counts) >= 8
    assert max(word_counts) <= 25
    assert any("," in row[1] for row in rows)
    assert any('"' in row[1] for row in rows)


def test_jsonl_records_are_good_and_distinct(any_size_sample: Sample) -> None:
    folder, summary = any_size_sample
    lines = (folder.root / "texts/extra.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == summary.jsonl_records == JSONL_RECORDS == 30
    assert all(list(record) == ["id", "text", "label"] for record in records)
    assert {record["label"] for record in records} == TEXT_LABELS
    ids = {record["id"] for record in records}
    assert len(ids) == 30
    assert not ids & {row[0] for row in folder.good_csv_rows()}
    texts = {record["text"] for record in records}
    assert not texts & {row[1] for row in folder.good_csv_rows()}


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_texts_carry_learnable_signal(full_sample: Sample) -> None:
    """A bag-of-words nearest-centroid classifier separates the labels on held-out rows."""
    rows = full_sample[0].good_csv_rows()
    vocabulary = {word: i for i, word in enumerate(sorted({w for r in rows for w in tokens(r[1])}))}
    labels = sorted(TEXT_LABELS)
    features = np.zeros((len(rows), len(vocabulary)))
    for i, row in enumerate(rows):
        for word in tokens(row[1]):
            features[i, vocabulary[word]] += 1
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    targets = np.array([labels.index(row[2]) for row in rows])
    split = int(0.8 * len(rows))
    centroids = np.stack([features[:split][targets[:split] == k].mean(axis=0) for k in range(3)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    predicted = (features[split:] @ centroids.T).argmax(axis=1)
    accuracy = float((predicted == targets[split:]).mean())
    assert accuracy >= 0.9, accuracy

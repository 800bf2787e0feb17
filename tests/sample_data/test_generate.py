"""``generate``: default and requested sizes, determinism, what a smaller sample keeps, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keras_lakehouse.sample_data import SampleSummary, generate
from keras_lakehouse.sample_data import generator as sample_generator
from keras_lakehouse.sample_data.images import IMAGE_LABELS, IMAGES_PER_LABEL
from keras_lakehouse.sample_data.texts import TEXT_LABELS, TEXTS_PER_LABEL

Sample = tuple[Any, SampleSummary]
# What the session samples of conftest.py were generated with (seed 42, scale 1).
REQUESTED = {"minimum": (5, 1), "small": (12, 20), "full": (IMAGES_PER_LABEL, TEXTS_PER_LABEL)}


def test_default_sizes_per_label() -> None:
    assert (IMAGES_PER_LABEL, TEXTS_PER_LABEL) == (300, 400)


@pytest.mark.parametrize("size", ["minimum", "small", "full"])
def test_counts_written_are_the_counts_requested(request: pytest.FixtureRequest, size: str) -> None:
    folder, summary = request.getfixturevalue(f"{size}_sample")
    images, texts = REQUESTED[size]
    found = folder.good_images()
    assert {label: len(paths) for label, paths in found.items()} == dict.fromkeys(
        IMAGE_LABELS, images
    )
    assert all(sum(p.suffix == ".jpg" for p in paths) == images // 5 for paths in found.values())
    rows = folder.good_csv_rows()
    per_label = {label: sum(row[2] == label for row in rows) for label in TEXT_LABELS}
    assert per_label == dict.fromkeys(TEXT_LABELS, texts)
    assert summary.images_per_label == dict.fromkeys(IMAGE_LABELS, images)
    assert summary.texts_per_label == per_label


def test_scale_multiplies_the_defaults_a_count_given_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(The per-label defaults are shrunk here, so that the test stays fast.)"""
    monkeypatch.setattr(sample_generator, "IMAGES_PER_LABEL", 6)
    monkeypatch.setattr(sample_generator, "TEXTS_PER_LABEL", 4)
    summary = generate(tmp_path, scale=2, texts_per_label=3)
    assert summary.images_per_label == dict.fromkeys(IMAGE_LABELS, 12)
    assert summary.texts_per_label == dict.fromkeys(TEXT_LABELS, 3)


def test_same_arguments_give_identical_bytes(
    tmp_path: Path, sample_folder: Callable, small_sample: Sample
) -> None:
    generate(tmp_path, images_per_label=12, texts_per_label=20, seed=42)
    written = sample_folder(tmp_path).file_bytes()
    assert len(written) > 50
    assert written == small_sample[0].file_bytes()


def test_another_seed_gives_other_data(tmp_path: Path, minimum_sample: Sample) -> None:
    generate(tmp_path, seed=1, images_per_label=5, texts_per_label=1)
    for name in (
        "images/circle/circle_00001.png",
        "images/triangle/triangle_00001.png",
        "texts/extra.jsonl",
    ):
        assert (tmp_path / name).read_bytes() != (minimum_sample[0].root / name).read_bytes()


@pytest.mark.parametrize("size", ["minimum", "small"])
def test_a_smaller_sample_is_the_start_of_the_full_one(
    request: pytest.FixtureRequest, full_sample: Sample, size: str
) -> None:
    """Same seed and scale: the first images of every class, a subset of the good CSV rows
    (same ids, texts and order), and every other file but reviews.csv, byte for byte."""
    small, full = request.getfixturevalue(f"{size}_sample")[0], full_sample[0]
    full_images = full.good_images()
    for label, paths in small.good_images().items():
        first = full_images[label][: len(paths)]
        assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in first], label
    small_rows = small.good_csv_rows()
    assert [row for row in full.good_csv_rows() if row in small_rows] == small_rows
    full_bytes = full.file_bytes()
    good = {
        path.relative_to(small.root).as_posix()
        for paths in small.good_images().values()
        for path in paths
    }
    others = {
        name: content
        for name, content in small.file_bytes().items()
        if name != "texts/reviews.csv" and name not in good
    }
    assert {"texts/extra.jsonl", "inference/expected.csv", "images/circle/valid_cmyk.jpg"} <= set(
        others
    )
    assert others == {name: full_bytes[name] for name in others}


def test_regeneration_replaces_only_generated_folders(
    tmp_path: Path, sample_folder: Callable
) -> None:
    generate(tmp_path, images_per_label=6, texts_per_label=2)
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    generate(tmp_path, images_per_label=5, texts_per_label=1)
    folder = sample_folder(tmp_path)
    assert keep.read_text() == "mine"
    assert len(folder.good_images()["circle"]) == 5
    assert len(folder.good_csv_rows()) == 3 * 1


@pytest.mark.parametrize("scale", [0, -1])
def test_scale_must_be_positive(tmp_path: Path, scale: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^scale must be a positive integer\. Received: scale={scale}$"
    ):
        generate(tmp_path, scale=scale)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "value", "received"),
    [
        ("images_per_label", 0, "0"),
        ("images_per_label", 4, "4"),
        ("images_per_label", -5, "-5"),
        ("images_per_label", True, "True"),
        ("images_per_label", 10.0, "10.0"),
        ("texts_per_label", 0, "0"),
        ("texts_per_label", -1, "-1"),
        ("texts_per_label", "60", "'60'"),
    ],
)
def test_counts_below_their_minimum_are_refused(
    tmp_path: Path, name: str, value: object, received: str
) -> None:
    minimum = {"images_per_label": 5, "texts_per_label": 1}[name]
    expected = rf"^{name} must be an integer of at least {minimum} \(.+\)\. Received: {name}="
    with pytest.raises(ValueError, match=expected + re.escape(received) + "$"):
        generate(tmp_path, **{name: value})
    assert not any(tmp_path.iterdir())

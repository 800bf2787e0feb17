"""``python -m keras_lakehouse.sample_data``: options, --if-empty, refusals (exit status 2)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keras_lakehouse.sample_data import SampleSummary, has_files, main
from keras_lakehouse.sample_data import generator as sample_generator


def test_options_reach_generate(
    tmp_path: Path, sample_folder: Callable, minimum_sample: tuple[Any, SampleSummary]
) -> None:
    arguments = ["--seed", "42", "--images-per-label", "5", "--texts-per-label", "1"]
    assert main(["--output", str(tmp_path), *arguments]) == 0
    assert sample_folder(tmp_path).file_bytes() == minimum_sample[0].file_bytes()


def test_scale_option_multiplies_the_defaults(
    tmp_path: Path, sample_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_generator, "IMAGES_PER_LABEL", 5)
    monkeypatch.setattr(sample_generator, "TEXTS_PER_LABEL", 3)
    assert main(["--output", str(tmp_path), "--scale", "2"]) == 0
    folder = sample_folder(tmp_path)
    images = folder.good_images()
    assert {label: len(paths) for label, paths in images.items()} == dict.fromkeys(images, 10)
    assert len(images) == 3
    rows = folder.good_csv_rows()
    assert len(rows) == 2 * 3 * 3
    assert len({row[0] for row in rows}) == len(rows)


def test_if_empty_skips_a_folder_with_files(tmp_path: Path, sample_folder: Callable) -> None:
    marker = tmp_path / "images" / "mine.png"
    marker.parent.mkdir()
    marker.write_bytes(b"keep")
    assert main(["--output", str(tmp_path), "--if-empty"]) == 0
    assert sample_folder(tmp_path).file_bytes() == {"images/mine.png": b"keep"}


def test_if_empty_generates_when_only_gitkeep(tmp_path: Path, sample_folder: Callable) -> None:
    (tmp_path / ".gitkeep").write_text("")
    assert not has_files(tmp_path)
    arguments = ["--if-empty", "--images-per-label", "5", "--texts-per-label", "1"]
    assert main(["--output", str(tmp_path), *arguments]) == 0
    assert (tmp_path / ".gitkeep").exists()
    assert len(sample_folder(tmp_path).good_images()["square"]) == 5
    assert (tmp_path / "texts/reviews.csv").is_file()
    assert has_files(tmp_path)


def test_if_empty_with_only_a_gitkeep_deep_down(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images/.gitkeep").write_text("")
    assert not has_files(tmp_path)
    assert not has_files(tmp_path / "missing")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scale", "0", "scale must be a positive integer. Received: scale=0"),
        ("--scale", "two", "scale must be a positive integer. Received: scale='two'"),
        ("--images-per-label", "4", "images_per_label must be an integer of at least 5"),
        ("--images-per-label", "1.5", "Received: images_per_label='1.5'"),
        ("--texts-per-label", "0", "texts_per_label must be an integer of at least 1"),
    ],
)
def test_cli_refuses_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--output", str(tmp_path), option, value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: " in error
    assert message in error
    assert not any(tmp_path.iterdir())


def test_inference_only_replaces_just_the_batch_and_shifted_draws_another_distribution(
    tmp_path: Path,
) -> None:
    import csv

    import numpy as np
    from PIL import Image

    from keras_lakehouse.sample_data.inference import INFERENCE_BAD_TEXT_IDS
    from keras_lakehouse.sample_data.sentences import NEUTRAL_WORDS, TOPICAL_WORDS

    raw = tmp_path / "raw"
    images = raw / "inference/images"
    texts = raw / "inference/texts/new_texts.csv"
    assert main(["--output", str(raw), "--inference-only"]) == 0
    assert not (raw / "images").exists()  # only the inference batch is written
    normal = {path.name: path.read_bytes() for path in images.iterdir()}
    normal_texts = texts.read_text()
    assert main(["--output", str(raw), "--inference-only", "--shifted"]) == 0
    shifted = {path.name: path.read_bytes() for path in images.iterdir()}
    assert shifted.keys() == normal.keys()  # same files and labels, other contents

    def brightness(content: bytes) -> float:
        with Image.open(io.BytesIO(content)) as image:
            return float(np.asarray(image.convert("RGB")).mean())

    good = [name for name in normal if name != "new_corrupt.png"]
    assert all(brightness(shifted[name]) < 0.5 * brightness(normal[name]) for name in good)
    known = {word for words in TOPICAL_WORDS.values() for word in words} | set(NEUTRAL_WORDS)
    rows = [
        row
        for row in csv.DictReader(io.StringIO(texts.read_text()))
        if row["id"] not in INFERENCE_BAD_TEXT_IDS
    ]
    words = {word.strip('.,!"').lower() for row in rows for word in row["text"].split()}
    assert words
    assert not words & known
    assert texts.read_text() != normal_texts
    assert main(["--output", str(raw), "--inference-only"]) == 0  # and back, byte for byte
    assert {path.name: path.read_bytes() for path in images.iterdir()} == normal


def test_shifted_without_inference_only_is_refused(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path), "--shifted"]) == 2
    assert not any(tmp_path.iterdir())

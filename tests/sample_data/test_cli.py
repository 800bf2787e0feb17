"""``python -m keras_lakehouse.sample_data``: options, --if-empty, refusals (exit status 2)."""

from __future__ import annotations

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

"""Shared samples for the sample data tests: generated once per session, read-only for tests
(a test that writes generates its own, under ``tmp_path``)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from keras_lakehouse.sample_data import SampleSummary, generate
from keras_lakehouse.sample_data.images import MIN_IMAGES_PER_LABEL
from keras_lakehouse.sample_data.texts import MIN_TEXTS_PER_LABEL

GOOD_IMAGE = re.compile(r"^(circle|square|triangle)_\d{5}\.(png|jpg)$")
FIRST_BAD_ROW = b"\nbad_not_utf8,"


@dataclass(frozen=True)
class SampleFolder:
    """A generated raw data folder, and the readers the tests share."""

    root: Path

    def file_bytes(self) -> dict[str, bytes]:
        """Every file's bytes, by path relative to the root."""
        return {
            path.relative_to(self.root).as_posix(): path.read_bytes()
            for path in sorted(self.root.rglob("*"))
            if path.is_file()
        }

    def good_images(self) -> dict[str, list[Path]]:
        """The good generated images by label, in name order."""
        found: dict[str, list[Path]] = {}
        for path in sorted((self.root / "images").rglob("*")):
            if GOOD_IMAGE.match(path.name):
                found.setdefault(path.parent.name, []).append(path)
        return found

    def good_csv_rows(self) -> list[list[str]]:
        """The good rows of reviews.csv: everything before the first bad row."""
        content = (self.root / "texts/reviews.csv").read_bytes()
        good_part = content.split(FIRST_BAD_ROW, 1)[0].decode("utf-8") + "\n"
        header, *rows = csv.reader(io.StringIO(good_part, newline=""))
        assert header == ["id", "text", "label"]
        return rows


Sample = tuple[SampleFolder, SampleSummary]


@pytest.fixture(scope="session")
def full_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """The default generation (seed 42, scale 1): the only full-size one of the session."""
    root = tmp_path_factory.mktemp("full_sample")
    return SampleFolder(root), generate(root)


@pytest.fixture(scope="session")
def minimum_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """The smallest generation allowed (seed 42)."""
    root = tmp_path_factory.mktemp("minimum_sample")
    summary = generate(
        root, images_per_label=MIN_IMAGES_PER_LABEL, texts_per_label=MIN_TEXTS_PER_LABEL
    )
    return SampleFolder(root), summary


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """A small generation (seed 42): 12 images (not a multiple of 5) and 20 texts per label."""
    root = tmp_path_factory.mktemp("small_sample")
    return SampleFolder(root), generate(root, images_per_label=12, texts_per_label=20)


@pytest.fixture(params=["minimum", "full"])
def any_size_sample(request: pytest.FixtureRequest) -> Sample:
    """Each of the smallest and the default generation in turn."""
    return request.getfixturevalue(f"{request.param}_sample")


@pytest.fixture
def sample_folder() -> Callable[[Path], SampleFolder]:
    """``sample_folder(path)``: the readers over a folder a test generated itself."""
    return SampleFolder

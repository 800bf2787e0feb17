"""The synthetic raw dataset: determinism, counts, special files, CLI behaviour, text signal."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from keras_lakehouse.sample_data import SampleSummary, generate, main
from keras_lakehouse.sample_data import core as sample_data

TEXT_LABELS = {"sports", "technology", "cooking"}
GOOD_IMAGE = re.compile(r"^(circle|square|triangle)_\d{5}\.(png|jpg)$")
BAD_TEXT_IDS = {"bad_not_utf8", "bad_empty_text", "bad_unknown_label", "bad_malformed"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    """One default generation shared by the read-only tests."""
    output = tmp_path_factory.mktemp("raw")
    return output, generate(output)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def good_images(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in (root / "images").rglob("*"):
        if GOOD_IMAGE.match(path.name):
            found.setdefault(path.parent.name, []).append(path)
    return found


def good_csv_rows(root: Path) -> list[list[str]]:
    """The good rows of reviews.csv: everything before the first bad row."""
    content = (root / "texts/reviews.csv").read_bytes()
    good_part = content.split(b"\nbad_not_utf8,", 1)[0].decode("utf-8") + "\n"
    header, *rows = csv.reader(io.StringIO(good_part, newline=""))
    assert header == ["id", "text", "label"]
    return rows


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert len(first) > 400
    assert first == second


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=1)
    generate(tmp_path / "b", seed=2)
    name = "images/circle/circle_00001.png"
    assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_default_counts_per_class(raw: tuple[Path, SampleSummary]) -> None:
    root, summary = raw
    images = good_images(root)
    assert {label: len(paths) for label, paths in images.items()} == dict.fromkeys(
        ("circle", "square", "triangle"), sample_data.IMAGES_PER_LABEL
    )
    assert summary.images_per_label == dict.fromkeys(images, 300)
    rows = good_csv_rows(root)
    per_label = {label: sum(row[2] == label for row in rows) for label in TEXT_LABELS}
    assert (
        per_label
        == dict.fromkeys(TEXT_LABELS, sample_data.TEXTS_PER_LABEL)
        == {label: 400 for label in TEXT_LABELS}
    )
    assert summary.texts_per_label == per_label


def test_about_a_fifth_of_images_are_jpeg(raw: tuple[Path, SampleSummary]) -> None:
    root, _ = raw
    for label, paths in good_images(root).items():
        jpegs = [path for path in paths if path.suffix == ".jpg"]
        assert len(jpegs) == len(paths) // 5, label
        with Image.open(jpegs[0]) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (64, 64), "RGB")
        with Image.open(next(path for path in paths if path.suffix == ".png")) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (64, 64), "RGB")


def test_scale_two_doubles_the_counts(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path), "--scale", "2"]) == 0
    images = good_images(tmp_path)
    assert {label: len(paths) for label, paths in images.items()} == dict.fromkeys(images, 600)
    assert len(images) == 3
    rows = good_csv_rows(tmp_path)
    assert len(rows) == 2 * 3 * 400
    assert len({row[0] for row in rows}) == len(rows)


def test_regeneration_replaces_only_generated_folders(tmp_path: Path) -> None:
    generate(tmp_path, scale=2)
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    generate(tmp_path, scale=1)
    assert keep.read_text() == "mine"
    assert len(good_images(tmp_path)["circle"]) == 300
    assert len(good_csv_rows(tmp_path)) == 3 * 400


def test_truncated_png_fails_to_load(raw: tuple[Path, SampleSummary]) -> None:
    path = raw[0] / "images/circle/bad_truncated.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OSError, match="truncated"), Image.open(path) as image:
        image.load()


def test_zero_byte_and_not_an_image(raw: tuple[Path, SampleSummary]) -> None:
    zero = raw[0] / "images/square/bad_zero_byte.png"
    text = raw[0] / "images/triangle/bad_not_an_image.jpg"
    assert zero.stat().st_size == 0
    assert text.read_text(encoding="utf-8") == "this is not an image\n"
    for path in (zero, text):
        with pytest.raises(UnidentifiedImageError):
            Image.open(path)


def test_pixel_bomb_declares_forty_thousand_squared(raw: tuple[Path, SampleSummary]) -> None:
    path = raw[0] / "images/circle/bad_pixel_bomb.png"
    assert path.stat().st_size < 1024
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning either: the header is well formed
            with Image.open(path) as image:
                assert (image.format, image.size, image.mode) == ("PNG", (40000, 40000), "RGB")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)  # the default limit still protects against it


def shape_pixels(image: Image.Image) -> tuple[float, np.ndarray]:
    """Fraction of pixels that differ from the corner colour, and that mask."""
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    corners = np.array([pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]])
    mask = np.abs(pixels - np.median(corners)) > 40
    return float(mask.mean()), mask


@pytest.mark.parametrize(
    ("name", "mode", "fmt"),
    [
        ("square/valid_grayscale.png", "L", "PNG"),
        ("triangle/valid_rgba.png", "RGBA", "PNG"),
        ("circle/valid_cmyk.jpg", "CMYK", "JPEG"),
        ("hexagon/bad_unknown_label.png", "RGB", "PNG"),
    ],
)
def test_odd_images_are_whole_and_show_a_shape(
    raw: tuple[Path, SampleSummary], name: str, mode: str, fmt: str
) -> None:
    with Image.open(raw[0] / "images" / name) as image:
        image.load()
        assert (image.mode, image.format, image.size) == (mode, fmt, (64, 64))
        fraction, _ = shape_pixels(image)
    assert 0.05 < fraction < 0.6, fraction


def test_rgba_background_is_partly_transparent(raw: tuple[Path, SampleSummary]) -> None:
    with Image.open(raw[0] / "images/triangle/valid_rgba.png") as image:
        alpha = np.asarray(image.getchannel("A"))
    assert 0 < alpha[0, 0] < 255
    assert (alpha == 255).mean() > 0.05


def test_summary_lists_the_special_files(raw: tuple[Path, SampleSummary]) -> None:
    root, summary = raw
    assert set(summary.bad_images) == {
        "circle/bad_truncated.png",
        "square/bad_zero_byte.png",
        "triangle/bad_not_an_image.jpg",
        "circle/bad_pixel_bomb.png",
        "hexagon/bad_unknown_label.png",
    }
    for name in (*summary.bad_images, *summary.odd_valid_images):
        assert (root / "images" / name).is_file(), name
    with pytest.raises(AttributeError):
        summary.jsonl_records = 0  # type: ignore[misc]


def test_csv_holds_the_bad_rows(raw: tuple[Path, SampleSummary]) -> None:
    root, summary = raw
    content = (root / "texts/reviews.csv").read_bytes()
    assert b"\xff\xfe" in content
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8", "replace"), newline="")))
    by_id: dict[str, list[list[str]]] = {}
    for row in rows[1:]:
        by_id.setdefault(row[0], []).append(row)
    first_id = rows[1][0]
    assert by_id["bad_empty_text"] == [["bad_empty_text", "", "cooking"]]
    assert by_id["bad_unknown_label"][0][2] == "politics"
    assert by_id["bad_unknown_label"][0][1].strip()
    assert by_id["bad_not_utf8"][0][2] == "sports"
    assert by_id["bad_malformed"] == [["bad_malformed", "only two fields"]]
    duplicates = by_id[first_id]
    assert len(duplicates) == 2
    assert duplicates[1][2] == "technology"
    assert duplicates[0][1] != duplicates[1][1]
    assert set(summary.bad_text_ids) == BAD_TEXT_IDS | {first_id}


def test_good_csv_rows_are_well_formed(raw: tuple[Path, SampleSummary]) -> None:
    rows = good_csv_rows(raw[0])
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


def test_jsonl_records_are_good_and_distinct(raw: tuple[Path, SampleSummary]) -> None:
    root, summary = raw
    lines = (root / "texts/extra.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == summary.jsonl_records == 30
    assert all(list(record) == ["id", "text", "label"] for record in records)
    assert {record["label"] for record in records} == TEXT_LABELS
    ids = {record["id"] for record in records}
    assert len(ids) == 30
    assert not ids & {row[0] for row in good_csv_rows(root)}


def test_if_empty_skips_a_folder_with_files(tmp_path: Path) -> None:
    marker = tmp_path / "images" / "mine.png"
    marker.parent.mkdir()
    marker.write_bytes(b"keep")
    assert main(["--output", str(tmp_path), "--if-empty"]) == 0
    assert file_bytes(tmp_path) == {"images/mine.png": b"keep"}


def test_if_empty_generates_when_only_gitkeep(tmp_path: Path) -> None:
    (tmp_path / ".gitkeep").write_text("")
    assert main(["--output", str(tmp_path), "--if-empty"]) == 0
    assert (tmp_path / ".gitkeep").exists()
    assert len(good_images(tmp_path)["square"]) == 300
    assert (tmp_path / "texts/reviews.csv").is_file()


@pytest.mark.parametrize("scale", [0, -1])
def test_scale_must_be_positive(tmp_path: Path, scale: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^scale must be a positive integer\. Received: scale={scale}$"
    ):
        generate(tmp_path, scale=scale)
    assert not any(tmp_path.iterdir())


def test_cli_rejects_scale_zero(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--output", str(tmp_path), "--scale", "0"])
    assert raised.value.code == 2
    assert not any(tmp_path.iterdir())


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_texts_carry_learnable_signal(raw: tuple[Path, SampleSummary]) -> None:
    """A bag-of-words nearest-centroid classifier separates the labels on held-out rows."""
    rows = good_csv_rows(raw[0])
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

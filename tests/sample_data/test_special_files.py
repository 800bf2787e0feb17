"""The bad and odd files every generation writes, at the smallest size and at the default one."""

from __future__ import annotations

import csv
import io
import warnings
from typing import Any

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from keras_lakehouse.sample_data import SampleSummary

BAD_TEXT_IDS = {"bad_not_utf8", "bad_empty_text", "bad_unknown_label", "bad_malformed"}
Sample = tuple[Any, SampleSummary]


def test_truncated_png_fails_to_load(any_size_sample: Sample) -> None:
    path = any_size_sample[0].root / "images/circle/bad_truncated.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OSError, match="truncated"), Image.open(path) as image:
        image.load()


def test_zero_byte_and_not_an_image(any_size_sample: Sample) -> None:
    root = any_size_sample[0].root
    zero = root / "images/square/bad_zero_byte.png"
    text = root / "images/triangle/bad_not_an_image.jpg"
    assert zero.stat().st_size == 0
    assert text.read_text(encoding="utf-8") == "this is not an image\n"
    for path in (zero, text):
        with pytest.raises(UnidentifiedImageError):
            Image.open(path)


def test_pixel_bomb_declares_forty_thousand_squared(any_size_sample: Sample) -> None:
    path = any_size_sample[0].root / "images/circle/bad_pixel_bomb.png"
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
    minimum_sample: Sample, name: str, mode: str, fmt: str
) -> None:
    """(The same bytes at every size: see test_special_images_do_not_depend_on_the_size.)"""
    with Image.open(minimum_sample[0].root / "images" / name) as image:
        image.load()
        assert (image.mode, image.format, image.size) == (mode, fmt, (64, 64))
        fraction, _ = shape_pixels(image)
    assert 0.05 < fraction < 0.6, fraction


def test_rgba_background_is_partly_transparent(minimum_sample: Sample) -> None:
    with Image.open(minimum_sample[0].root / "images/triangle/valid_rgba.png") as image:
        alpha = np.asarray(image.getchannel("A"))
    assert 0 < alpha[0, 0] < 255
    assert (alpha == 255).mean() > 0.05


def test_summary_lists_the_special_files(any_size_sample: Sample) -> None:
    folder, summary = any_size_sample
    assert set(summary.bad_images) == {
        "circle/bad_truncated.png",
        "square/bad_zero_byte.png",
        "triangle/bad_not_an_image.jpg",
        "circle/bad_pixel_bomb.png",
        "hexagon/bad_unknown_label.png",
    }
    assert set(summary.odd_valid_images) == {
        "square/valid_grayscale.png",
        "triangle/valid_rgba.png",
        "circle/valid_cmyk.jpg",
    }
    for name in (*summary.bad_images, *summary.odd_valid_images):
        assert (folder.root / "images" / name).is_file(), name
    with pytest.raises(AttributeError):
        summary.jsonl_records = 0  # type: ignore[misc]


def test_csv_holds_the_bad_rows(any_size_sample: Sample) -> None:
    folder, summary = any_size_sample
    content = (folder.root / "texts/reviews.csv").read_bytes()
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


def test_inference_batch_is_written(any_size_sample: Sample) -> None:
    folder, summary = any_size_sample
    inference = folder.root / "inference"
    assert (summary.inference_images, summary.inference_texts) == (24, 24)
    assert summary.inference_bad == ("images/new_corrupt.png", "new_empty", "new_malformed")
    # The training images' format mix (every fifth a JPEG): the batch is in-distribution.
    assert len(list((inference / "images").glob("new_0*.png"))) == 20
    assert len(list((inference / "images").glob("new_0*.jpg"))) == 4
    corrupt = (inference / "images/new_corrupt.png").read_bytes()
    assert corrupt.startswith(b"\x89PNG")
    texts = (inference / "texts/new_texts.csv").read_text(encoding="utf-8")
    assert "\nnew_empty,\n" in texts
    assert "\nnew_malformed," in texts
    expected = list(csv.reader(io.StringIO((inference / "expected.csv").read_text())))
    assert expected[0] == ["kind", "key", "label"]
    assert [row[0] for row in expected[1:]].count("image") == 24
    assert [row[0] for row in expected[1:]].count("text") == 24

"""Image checks and RGB normalisation, on images made in memory."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from keras_lakehouse.ingest import images as imaging
from keras_lakehouse.ingest import reasons
from keras_lakehouse.ingest.images import decode_rgb, inspect_image, to_rgb

FORMATS = frozenset({"PNG", "JPEG"})
CAP = 4096 * 4096


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def check(content: bytes) -> imaging.ImageCheck:
    return inspect_image(content, allowed_formats=FORMATS, max_pixels=CAP)


def test_valid_png_is_accepted_with_its_header() -> None:
    result = check(encode(Image.new("RGB", (30, 20), (10, 200, 30))))
    assert result == imaging.ImageCheck(format="PNG", width=30, height=20, mode="RGB")


def test_truncated_png_is_rejected_as_truncated() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    content = encode(Image.fromarray(noise))
    result = check(content[: len(content) // 2])
    assert result.reason == reasons.TRUNCATED, result
    assert result.width == 64  # the header was still read


def test_truncated_jpeg_is_rejected() -> None:
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    content = encode(Image.fromarray(noise), "JPEG")
    result = check(content[: len(content) // 2])
    assert result.reason in {reasons.TRUNCATED, reasons.CORRUPT}, result


def test_text_with_image_extension_is_not_an_image() -> None:
    assert check(b"this is not an image\n").reason == reasons.NOT_AN_IMAGE


def test_zero_bytes_are_not_an_image() -> None:
    assert check(b"").reason == reasons.NOT_AN_IMAGE


def test_format_outside_allow_list_is_rejected() -> None:
    result = check(encode(Image.new("RGB", (8, 8)), "GIF"))
    assert result.reason == reasons.UNSUPPORTED_FORMAT
    assert "GIF" in result.detail


def test_pixel_cap_is_checked_from_the_header() -> None:
    content = encode(Image.new("L", (300, 300)))
    result = inspect_image(content, allowed_formats=FORMATS, max_pixels=300 * 299)
    assert result.reason == reasons.TOO_MANY_PIXELS
    assert "300x300" in result.detail


def test_corrupt_checksum_is_rejected() -> None:
    content = bytearray(encode(Image.new("RGB", (16, 16), (1, 2, 3))))
    content[-20] ^= 0xFF  # inside the IDAT chunk: breaks its CRC
    assert check(bytes(content)).reason in {reasons.CORRUPT, reasons.TRUNCATED}


def test_refuses_to_run_with_truncated_loading_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        check(encode(Image.new("RGB", (4, 4))))


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("P", "PNG"), ("LA", "PNG"), ("I;16", "PNG")],
)
def test_odd_modes_are_accepted_and_normalise_to_rgb(mode: str, fmt: str) -> None:
    content = encode(Image.new("RGB", (12, 10), (200, 40, 40)).convert(mode), fmt)
    result = check(content)
    assert result.reason is None, result
    rgb = decode_rgb(content, max_pixels=CAP)
    assert rgb.mode == "RGB"
    assert rgb.size == (12, 10)


def test_grayscale_keeps_its_intensity() -> None:
    rgb = to_rgb(Image.new("L", (2, 2), 77))
    assert rgb.getpixel((0, 0)) == (77, 77, 77)


def test_transparent_pixels_become_white_not_their_hidden_colour() -> None:
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 0))  # fully transparent red
    image.putpixel((1, 0), (0, 0, 255, 255))  # opaque blue
    rgb = to_rgb(image)
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 0)) == (0, 0, 255)


def test_cmyk_white_stays_white() -> None:
    rgb = to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 0)))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_grayscale_scales_to_8_bits() -> None:
    rgb = to_rgb(Image.new("I;16", (1, 1), 65535))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)


def test_decode_rgb_applies_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    assert decode_rgb(buffer.getvalue(), max_pixels=CAP).size == (20, 40)


def test_decode_rgb_refuses_images_above_the_cap() -> None:
    with pytest.raises(ValueError, match="above the cap of 10"):
        decode_rgb(encode(Image.new("RGB", (4, 4))), max_pixels=10)

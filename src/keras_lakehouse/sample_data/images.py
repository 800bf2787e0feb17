"""The labelled shape images: good PNG/JPEG files per class, then the fixed bad and odd files.

Layout under ``images/``: ``<label>/<label>_00001.png|.jpg`` (good), plus the special files
named below (truncated, zero-byte, not an image, decompression bomb, unknown label, and valid
images in the L, RGBA and CMYK modes).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from keras_lakehouse.sample_data.layout import IMAGE_STREAM, SPECIAL_STREAM
from keras_lakehouse.sample_data.shapes import (
    MAX_CHANNEL,
    RGB_CHANNELS,
    draw_shape,
    encode,
    random_image,
    render,
)

IMAGE_LABELS = ("circle", "square", "triangle")
IMAGES_PER_LABEL = 300
JPEG_EVERY = 5  # every fifth image of a class is a JPEG (20 %), the rest PNG
# The fewest good images per label: one full PNG/JPEG cycle, so every class holds both formats.
MIN_IMAGES_PER_LABEL = JPEG_EVERY
NAME_DIGITS = 5
RGBA_BACKGROUND_ALPHA = 96

BAD_TRUNCATED = "circle/bad_truncated.png"
BAD_ZERO_BYTE = "square/bad_zero_byte.png"
BAD_NOT_AN_IMAGE = "triangle/bad_not_an_image.jpg"
BAD_PIXEL_BOMB = "circle/bad_pixel_bomb.png"
BAD_UNKNOWN_LABEL = "hexagon/bad_unknown_label.png"
VALID_GRAYSCALE = "square/valid_grayscale.png"
VALID_RGBA = "triangle/valid_rgba.png"
VALID_CMYK = "circle/valid_cmyk.jpg"
NOT_AN_IMAGE_TEXT = "this is not an image\n"
BOMB_SIDE = 40_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BIT_DEPTH = 8
PNG_COLOR_TYPE_RGB = 2


def write_good_images(folder: Path, *, count: int, drawn: int, seed: int) -> dict[str, int]:
    """Write ``count`` good images per label under ``folder/<label>/``.

    Each label draws ``max(count, drawn)`` images from the stream and writes the first
    ``count``, so for any ``count <= drawn`` the files are the first ``count`` of those written
    with ``count == drawn``, byte for byte.

    Args:
        folder: The ``images`` folder.
        count: Good images to write per label.
        drawn: Images drawn per label when fewer are written (the full-size count).
        seed: The run's seed.

    Returns:
        The number of good images written per label.
    """
    rng = np.random.default_rng([seed, IMAGE_STREAM])
    for label in IMAGE_LABELS:
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(1, max(count, drawn) + 1):
            shape = draw_shape(rng, label)
            if index > count:
                continue  # drawn only, to keep the next label's images where they belong
            is_jpeg = index % JPEG_EVERY == 0
            suffix = "jpg" if is_jpeg else "png"
            path = folder / label / f"{label}_{index:0{NAME_DIGITS}d}.{suffix}"
            path.write_bytes(encode(render(shape)[0], "JPEG" if is_jpeg else "PNG"))
    return dict.fromkeys(IMAGE_LABELS, count)


def write_special_images(folder: Path, *, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Write the fixed bad and odd image files under ``folder`` (the same at every size).

    Args:
        folder: The ``images`` folder.
        seed: The run's seed.

    Returns:
        The bad files and the valid odd-mode files, relative to ``folder``.
    """
    rng = np.random.default_rng([seed, SPECIAL_STREAM])
    truncated = encode(random_image(rng, "circle"), "PNG")
    square = random_image(rng, "square")
    triangle, triangle_mask = render(draw_shape(rng, "triangle"))
    circle = random_image(rng, "circle")
    hexagon = random_image(rng, "hexagon")
    alpha = Image.eval(triangle_mask, _rgba_alpha)
    rgba = triangle.convert("RGBA")
    rgba.putalpha(alpha)
    bad = {
        BAD_TRUNCATED: truncated[: len(truncated) // 2],
        BAD_ZERO_BYTE: b"",
        BAD_NOT_AN_IMAGE: NOT_AN_IMAGE_TEXT.encode("utf-8"),
        BAD_PIXEL_BOMB: _pixel_bomb_png(),
        BAD_UNKNOWN_LABEL: encode(hexagon, "PNG"),
    }
    odd = {
        VALID_GRAYSCALE: encode(square.convert("L"), "PNG"),
        VALID_RGBA: encode(rgba, "PNG"),
        VALID_CMYK: encode(circle.convert("CMYK"), "JPEG"),
    }
    for name, content in (bad | odd).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tuple(bad), tuple(odd)


def _rgba_alpha(mask_value: int) -> int:
    """Opaque shape, partly transparent background (anti-aliased edges blend between)."""
    return round(
        RGBA_BACKGROUND_ALPHA + (MAX_CHANNEL - RGBA_BACKGROUND_ALPHA) * mask_value / MAX_CHANNEL
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pixel_bomb_png() -> bytes:
    """A tiny, well-formed PNG whose header declares BOMB_SIDE x BOMB_SIDE RGB pixels."""
    header = struct.pack(
        ">IIBBBBB", BOMB_SIDE, BOMB_SIDE, PNG_BIT_DEPTH, PNG_COLOR_TYPE_RGB, 0, 0, 0
    )
    first_row = bytes(1 + BOMB_SIDE * RGB_CHANNELS)  # filter byte + one black scanline
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(first_row, level=9))
        + _png_chunk(b"IEND", b"")
    )

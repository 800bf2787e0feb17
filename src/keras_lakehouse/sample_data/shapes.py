"""One labelled shape image: every random choice drawn up front, then rendered and encoded."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIDE = 64
SUPERSAMPLE = 4  # shapes are drawn this many times larger, then downsampled (anti-aliasing)
MIN_SIZE_FRACTION = 0.5  # shape diameter (circumscribed circle) as a fraction of the side
MAX_SIZE_FRACTION = 0.85
EDGE_MARGIN_PX = 1
NOISE_STD = 10.0
MIN_LUMA_CONTRAST = 120.0
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
CHANNEL_LEVELS = 256
MAX_CHANNEL = CHANNEL_LEVELS - 1
RGB_CHANNELS = 3
JPEG_QUALITY = 90
SIDES = {"circle": 0, "triangle": 3, "square": 4, "hexagon": 6}
FULL_TURN_DEGREES = 360.0

Color = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class ShapeDraw:
    """Everything random about one image: where and how the shape is drawn (in final-image
    pixels) and the pixel noise added on top."""

    sides: int
    center: tuple[float, float]
    radius: float
    rotation: float
    background: Color
    foreground: Color
    noise: np.ndarray


def draw_shape(rng: np.random.Generator, label: str) -> ShapeDraw:
    """Draw every random choice of one image of ``label``, in a fixed order.

    Rendering draws nothing more, so skipping an image (drawing without rendering) leaves
    ``rng`` exactly where rendering it would.

    Args:
        rng: The random stream to draw from.
        label: A key of ``SIDES``.

    Returns:
        The ``ShapeDraw`` to pass to ``render``.
    """
    diameter = rng.uniform(MIN_SIZE_FRACTION, MAX_SIZE_FRACTION) * IMAGE_SIDE
    radius = diameter / 2
    low, high = radius + EDGE_MARGIN_PX, IMAGE_SIDE - radius - EDGE_MARGIN_PX
    background, foreground = _contrasting_colors(rng)
    center = (float(rng.uniform(low, high)), float(rng.uniform(low, high)))
    rotation = float(rng.uniform(0.0, FULL_TURN_DEGREES))
    noise = rng.normal(0.0, NOISE_STD, size=(IMAGE_SIDE, IMAGE_SIDE, RGB_CHANNELS))
    return ShapeDraw(
        sides=SIDES[label],
        center=center,
        radius=radius,
        rotation=rotation,
        background=background,
        foreground=foreground,
        noise=noise,
    )


def render(shape: ShapeDraw) -> tuple[Image.Image, Image.Image]:
    """Draw ``shape`` anti-aliased and add its noise.

    Args:
        shape: What ``draw_shape`` drew.

    Returns:
        The RGB image and the shape mask (mode L, 255 inside the shape).
    """
    big_side = IMAGE_SIDE * SUPERSAMPLE
    mask = Image.new("L", (big_side, big_side), 0)
    draw = ImageDraw.Draw(mask)
    center_x, center_y = (value * SUPERSAMPLE for value in shape.center)
    radius = shape.radius * SUPERSAMPLE
    if shape.sides:
        draw.regular_polygon(
            (center_x, center_y, radius), shape.sides, rotation=shape.rotation, fill=MAX_CHANNEL
        )
    else:
        draw.ellipse(
            (center_x - radius, center_y - radius, center_x + radius, center_y + radius),
            fill=MAX_CHANNEL,
        )
    mask = mask.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    weight = np.asarray(mask, dtype=np.float64)[..., None] / MAX_CHANNEL
    pixels = np.asarray(shape.foreground) * weight + np.asarray(shape.background) * (1 - weight)
    pixels += shape.noise
    rgb = np.clip(np.rint(pixels), 0, MAX_CHANNEL).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB"), mask


def random_image(rng: np.random.Generator, label: str) -> Image.Image:
    """``render(draw_shape(rng, label))`` without the mask: one random RGB image of ``label``."""
    return render(draw_shape(rng, label))[0]


def encode(image: Image.Image, fmt: str) -> bytes:
    """The bytes of ``image`` saved as ``fmt`` ("PNG" or "JPEG", at ``JPEG_QUALITY``)."""
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _contrasting_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """A background and a shape colour whose luminances differ by at least MIN_LUMA_CONTRAST."""
    while True:
        background, foreground = rng.integers(0, CHANNEL_LEVELS, size=(2, RGB_CHANNELS))
        if abs(float((background - foreground) @ LUMA_WEIGHTS)) >= MIN_LUMA_CONTRAST:
            return _as_color(background), _as_color(foreground)


def _as_color(values: np.ndarray) -> Color:
    red, green, blue = (int(value) for value in values)
    return red, green, blue

"""Deterministic synthetic raw data: labelled shape images and topical short texts.

Run ``python -m keras_lakehouse.sample_data [--output data/01_raw] [--scale N] [--seed 42]
[--if-empty]``. The same seed and scale always give byte-identical files. Next to the good
records, every run also writes a fixed set of bad and odd files (truncated, zero-byte, not an
image, decompression bomb, unusual colour modes, unknown label, invalid UTF-8, empty text,
duplicate id, malformed CSV row) so that the ingestion checks always have something to reject.

Layout under the output folder::

    images/<label>/<label>_00001.png|.jpg    good images, plus the special files
    texts/reviews.csv                         id,text,label (good rows, then bad rows)
    texts/extra.jsonl                         good records as JSON lines
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import shutil
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

# ---- General ---------------------------------------------------------------------------------
DEFAULT_OUTPUT = Path("data/01_raw")
DEFAULT_SEED = 42
DEFAULT_SCALE = 1
IMAGES_DIR = "images"
TEXTS_DIR = "texts"
# New, unlabelled files for `kedro run --pipelines=inference`; `expected.csv` beside them holds
# their true labels (for checking predictions; the pipeline never reads it).
INFERENCE_DIR = "inference"
INFERENCE_IMAGES_PER_LABEL = 8
INFERENCE_TEXTS_PER_LABEL = 8
INFERENCE_BAD_IMAGE = "images/new_corrupt.png"
INFERENCE_BAD_TEXT_IDS = ("new_empty", "new_malformed")
EXPECTED_NAME = "expected.csv"
IGNORED_MARKER = ".gitkeep"
# Independent random streams, so that changing one part never shifts the other.
IMAGE_STREAM = 1
TEXT_STREAM = 2
SPECIAL_STREAM = 3
INFERENCE_STREAM = 4

# ---- Images ----------------------------------------------------------------------------------
IMAGE_LABELS = ("circle", "square", "triangle")
IMAGES_PER_LABEL = 300
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
JPEG_EVERY = 5  # every fifth image of a class is a JPEG (20 %), the rest PNG
JPEG_QUALITY = 90
NAME_DIGITS = 5
SIDES = {"circle": 0, "triangle": 3, "square": 4, "hexagon": 6}
FULL_TURN_DEGREES = 360.0
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
RGB_CHANNELS = 3

# ---- Texts -----------------------------------------------------------------------------------
TEXT_LABELS = ("sports", "technology", "cooking")
TEXTS_PER_LABEL = 400
JSONL_RECORDS = 30
MIN_WORDS = 8
MAX_WORDS = 25
MIN_TOPICAL_FRACTION = 0.3
MAX_TOPICAL_FRACTION = 0.55
COMMA_PROBABILITY = 0.12
QUOTE_PROBABILITY = 0.08
EXCLAIM_PROBABILITY = 0.2
ID_DIGITS = 6
CSV_NAME = "reviews.csv"
JSONL_NAME = "extra.jsonl"
CSV_HEADER = ("id", "text", "label")
LINE_END = "\n"

# Shared words ("bowl", "cup", "chip", "processor", "stream", "score", ...) blur the classes a bit.
TOPICAL_WORDS: dict[str, tuple[str, ...]] = {
    "sports": (
        "match", "goal", "team", "coach", "league", "referee", "stadium", "striker", "season",
        "playoff", "tournament", "defender", "penalty", "championship", "athlete", "sprint",
        "marathon", "tennis", "football", "basketball", "baseball", "pitch", "inning", "tackle",
        "medal", "olympic", "fans", "halftime", "overtime", "keeper", "dribble", "racket",
        "trophy", "cup", "bowl", "score", "stream", "transfer", "captain", "whistle",
    ),
    "technology": (
        "software", "laptop", "smartphone", "processor", "chip", "battery", "update", "app",
        "cloud", "server", "network", "algorithm", "database", "startup", "gadget", "browser",
        "keyboard", "screen", "pixel", "firmware", "robot", "sensor", "wireless", "bluetooth",
        "download", "upgrade", "developer", "code", "encryption", "gigabyte", "tablet", "camera",
        "stream", "score", "record", "platform", "silicon", "bug", "cookie", "compiler",
    ),
    "cooking": (
        "recipe", "oven", "flour", "garlic", "onion", "simmer", "saute", "bake", "roast",
        "butter", "sugar", "pasta", "sauce", "spice", "pepper", "salt", "whisk", "skillet",
        "dough", "knead", "broth", "grill", "marinade", "basil", "oregano", "chef", "kitchen",
        "dessert", "lemon", "vinegar", "cinnamon", "yeast", "chip", "processor", "cookie",
        "bowl", "cup", "pinch", "tender", "crispy",
    ),
}  # fmt: skip
NEUTRAL_WORDS: tuple[str, ...] = (
    "the", "a", "an", "and", "or", "but", "so", "very", "really", "quite", "today", "yesterday",
    "tomorrow", "people", "new", "old", "good", "bad", "great", "best", "worst", "first", "last",
    "time", "day", "week", "year", "thing", "way", "lot", "about", "after", "before", "again",
    "just", "still", "also", "maybe", "never", "always", "we", "they", "i", "you", "it", "this",
    "that", "my", "our", "their", "is", "was", "were", "have", "had", "think", "said", "felt",
    "looks", "seems",
)  # fmt: skip

BAD_NOT_UTF8_ID = "bad_not_utf8"
BAD_EMPTY_TEXT_ID = "bad_empty_text"
BAD_UNKNOWN_LABEL_ID = "bad_unknown_label"
BAD_MALFORMED_ID = "bad_malformed"
UNKNOWN_TEXT_LABEL = "politics"
NOT_UTF8_TEXT = b"great match at the \xff\xfe caf\xe9 today"
DUPLICATE_ID_LABEL = "technology"

Color = tuple[int, int, int]


@dataclass(frozen=True)
class SampleSummary:
    """What one generation wrote.

    Attributes:
        images_per_label: Good generated images per label.
        texts_per_label: Good rows of ``reviews.csv`` per label (``extra.jsonl`` not counted).
        jsonl_records: Good records in ``extra.jsonl``.
        bad_images: Bad image files, relative to ``images/``.
        odd_valid_images: Valid images in unusual modes (L, RGBA, CMYK), relative to ``images/``.
        bad_text_ids: Ids of the bad rows appended to ``reviews.csv`` (the duplicate id included).
        inference_images: Good unlabelled images under ``inference/images``.
        inference_texts: Good unlabelled rows of ``inference/texts/new_texts.csv``.
        inference_bad: Bad inference records (a file relative to ``inference/`` or a text id).
    """

    images_per_label: dict[str, int]
    texts_per_label: dict[str, int]
    jsonl_records: int
    bad_images: tuple[str, ...]
    odd_valid_images: tuple[str, ...]
    bad_text_ids: tuple[str, ...]
    inference_images: int = 0
    inference_texts: int = 0
    inference_bad: tuple[str, ...] = ()


@dataclass(frozen=True)
class _ShapeSpec:
    """Where and how one shape is drawn, in final-image pixels."""

    sides: int
    center: tuple[float, float]
    radius: float
    rotation: float
    background: Color
    foreground: Color


# ---- Public API ------------------------------------------------------------------------------


def generate(
    output: Path, *, scale: int = DEFAULT_SCALE, seed: int = DEFAULT_SEED
) -> SampleSummary:
    """Write the synthetic raw dataset under ``output``, replacing any earlier generated one.

    Only ``output/images`` and ``output/texts`` are removed first; nothing else is touched.

    Args:
        output: The raw data folder, e.g. ``data/01_raw``.
        scale: Multiplies the number of good images and text rows per label.
        seed: Seed of every random choice: the same seed and scale give byte-identical files.

    Returns:
        A ``SampleSummary`` of what was written.

    Raises:
        ValueError: If ``scale`` is not a positive integer.
    """
    _check_scale(scale)
    output = Path(output)
    for name in (IMAGES_DIR, TEXTS_DIR, INFERENCE_DIR):
        shutil.rmtree(output / name, ignore_errors=True)
    images_per_label = _write_good_images(
        output / IMAGES_DIR, count=IMAGES_PER_LABEL * scale, seed=seed
    )
    bad_images, odd_images = _write_special_images(output / IMAGES_DIR, seed=seed)
    texts_per_label, jsonl_records, bad_text_ids = _write_texts(
        output / TEXTS_DIR, count=TEXTS_PER_LABEL * scale, seed=seed
    )
    inference_images, inference_texts = _write_inference(output / INFERENCE_DIR, seed=seed)
    summary = SampleSummary(
        images_per_label=images_per_label,
        texts_per_label=texts_per_label,
        jsonl_records=jsonl_records,
        bad_images=bad_images,
        odd_valid_images=odd_images,
        bad_text_ids=bad_text_ids,
        inference_images=inference_images,
        inference_texts=inference_texts,
        inference_bad=(INFERENCE_BAD_IMAGE, *INFERENCE_BAD_TEXT_IDS),
    )
    logger.info("Wrote sample data under %s: %s", output, summary)
    return summary


def has_files(folder: Path) -> bool:
    """Whether ``folder`` holds any file (recursively), ``.gitkeep`` markers aside."""
    folder = Path(folder)
    return folder.is_dir() and any(
        path.is_file() and path.name != IGNORED_MARKER for path in folder.rglob("*")
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status (0 on success).
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    if args.if_empty and has_files(args.output):
        logger.info("%s already holds files: skipping sample data generation.", args.output)
        return 0
    generate(args.output, scale=args.scale, seed=args.seed)
    return 0


# ---- Command line ----------------------------------------------------------------------------


def _check_scale(scale: object) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer. Received: scale={scale!r}")


def _scale_argument(value: str) -> int:
    try:
        scale = int(value)
        _check_scale(scale)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"scale must be a positive integer. Received: scale={value!r}"
        ) from error
    return scale


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_lakehouse.sample_data",
        description="Generate the deterministic synthetic raw dataset (images and texts).",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="raw data folder")
    parser.add_argument(
        "--scale", type=_scale_argument, default=DEFAULT_SCALE, help="multiplies good records"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the output folder already holds files (.gitkeep aside)",
    )
    return parser


# ---- Images ----------------------------------------------------------------------------------


def _write_good_images(folder: Path, *, count: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng([seed, IMAGE_STREAM])
    for label in IMAGE_LABELS:
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(1, count + 1):
            image, _ = _render(_random_spec(rng, label), rng)
            is_jpeg = index % JPEG_EVERY == 0
            suffix = "jpg" if is_jpeg else "png"
            path = folder / label / f"{label}_{index:0{NAME_DIGITS}d}.{suffix}"
            path.write_bytes(_encode(image, "JPEG" if is_jpeg else "PNG"))
    return dict.fromkeys(IMAGE_LABELS, count)


def _write_special_images(folder: Path, *, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rng = np.random.default_rng([seed, SPECIAL_STREAM])
    truncated = _encode(_render(_random_spec(rng, "circle"), rng)[0], "PNG")
    square, _ = _render(_random_spec(rng, "square"), rng)
    triangle, triangle_mask = _render(_random_spec(rng, "triangle"), rng)
    circle, _ = _render(_random_spec(rng, "circle"), rng)
    hexagon, _ = _render(_random_spec(rng, "hexagon"), rng)
    alpha = Image.eval(triangle_mask, _rgba_alpha)
    rgba = triangle.convert("RGBA")
    rgba.putalpha(alpha)
    bad = {
        BAD_TRUNCATED: truncated[: len(truncated) // 2],
        BAD_ZERO_BYTE: b"",
        BAD_NOT_AN_IMAGE: NOT_AN_IMAGE_TEXT.encode("utf-8"),
        BAD_PIXEL_BOMB: _pixel_bomb_png(),
        BAD_UNKNOWN_LABEL: _encode(hexagon, "PNG"),
    }
    odd = {
        VALID_GRAYSCALE: _encode(square.convert("L"), "PNG"),
        VALID_RGBA: _encode(rgba, "PNG"),
        VALID_CMYK: _encode(circle.convert("CMYK"), "JPEG"),
    }
    for name, content in (bad | odd).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tuple(bad), tuple(odd)


def _write_inference(folder: Path, *, seed: int) -> tuple[int, int]:
    """Unlabelled images and texts to score, one corrupt image, two bad text rows, and
    ``expected.csv`` (kind, key, label) with the true labels of the good ones."""
    rng = np.random.default_rng([seed, INFERENCE_STREAM])
    images = folder / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    expected: list[tuple[str, str, str]] = []
    for label in IMAGE_LABELS:
        for _ in range(INFERENCE_IMAGES_PER_LABEL):
            name = f"new_{len(expected) + 1:0{NAME_DIGITS}d}.png"
            (images / name).write_bytes(_encode(_render(_random_spec(rng, label), rng)[0], "PNG"))
            expected.append(("image", name, label))
    whole = _encode(_render(_random_spec(rng, "circle"), rng)[0], "PNG")
    (folder / INFERENCE_BAD_IMAGE).write_bytes(whole[: len(whole) // 2])
    image_count = len(expected)
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for label in TEXT_LABELS:
        for _ in range(INFERENCE_TEXTS_PER_LABEL):
            rows.append(
                (f"new_{len(rows) + 1:0{ID_DIGITS}d}", _unique_text(rng, label, seen), label)
            )
    expected.extend(("text", row_id, label) for row_id, _, label in rows)
    empty_id, malformed_id = INFERENCE_BAD_TEXT_IDS
    texts = folder / TEXTS_DIR
    texts.mkdir(parents=True, exist_ok=True)
    (texts / "new_texts.csv").write_bytes(
        _csv_bytes([("id", "text"), *((row_id, text) for row_id, text, _ in rows), (empty_id, "")])
        + f'{malformed_id},"two",fields,too many{LINE_END}'.encode()
    )
    (folder / EXPECTED_NAME).write_bytes(_csv_bytes([("kind", "key", "label"), *expected]))
    return image_count, len(rows)


def _rgba_alpha(mask_value: int) -> int:
    """Opaque shape, partly transparent background (anti-aliased edges blend between)."""
    return round(
        RGBA_BACKGROUND_ALPHA + (MAX_CHANNEL - RGBA_BACKGROUND_ALPHA) * mask_value / MAX_CHANNEL
    )


def _random_spec(rng: np.random.Generator, label: str) -> _ShapeSpec:
    diameter = rng.uniform(MIN_SIZE_FRACTION, MAX_SIZE_FRACTION) * IMAGE_SIDE
    radius = diameter / 2
    low, high = radius + EDGE_MARGIN_PX, IMAGE_SIDE - radius - EDGE_MARGIN_PX
    background, foreground = _contrasting_colors(rng)
    return _ShapeSpec(
        sides=SIDES[label],
        center=(float(rng.uniform(low, high)), float(rng.uniform(low, high))),
        radius=radius,
        rotation=float(rng.uniform(0.0, FULL_TURN_DEGREES)),
        background=background,
        foreground=foreground,
    )


def _contrasting_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """A background and a shape colour whose luminances differ by at least MIN_LUMA_CONTRAST."""
    while True:
        background, foreground = rng.integers(0, CHANNEL_LEVELS, size=(2, RGB_CHANNELS))
        if abs(float((background - foreground) @ LUMA_WEIGHTS)) >= MIN_LUMA_CONTRAST:
            return _as_color(background), _as_color(foreground)


def _as_color(values: np.ndarray) -> Color:
    red, green, blue = (int(value) for value in values)
    return red, green, blue


def _render(spec: _ShapeSpec, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """Draw ``spec`` anti-aliased, add pixel noise; return the RGB image and the shape mask (L)."""
    big_side = IMAGE_SIDE * SUPERSAMPLE
    mask = Image.new("L", (big_side, big_side), 0)
    draw = ImageDraw.Draw(mask)
    center_x, center_y = (value * SUPERSAMPLE for value in spec.center)
    radius = spec.radius * SUPERSAMPLE
    if spec.sides:
        draw.regular_polygon(
            (center_x, center_y, radius), spec.sides, rotation=spec.rotation, fill=MAX_CHANNEL
        )
    else:
        draw.ellipse(
            (center_x - radius, center_y - radius, center_x + radius, center_y + radius),
            fill=MAX_CHANNEL,
        )
    mask = mask.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    weight = np.asarray(mask, dtype=np.float64)[..., None] / MAX_CHANNEL
    pixels = np.asarray(spec.foreground) * weight + np.asarray(spec.background) * (1 - weight)
    pixels += rng.normal(0.0, NOISE_STD, size=pixels.shape)
    rgb = np.clip(np.rint(pixels), 0, MAX_CHANNEL).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB"), mask


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


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


# ---- Texts -----------------------------------------------------------------------------------


def _write_texts(
    folder: Path, *, count: int, seed: int
) -> tuple[dict[str, int], int, tuple[str, ...]]:
    rng = np.random.default_rng([seed, TEXT_STREAM])
    seen: set[str] = set()
    rows = [(_unique_text(rng, label, seen), label) for label in TEXT_LABELS for _ in range(count)]
    rows = [rows[index] for index in rng.permutation(len(rows))]
    good = [
        (f"t{number:0{ID_DIGITS}d}", text, label) for number, (text, label) in enumerate(rows, 1)
    ]
    extra_labels = [TEXT_LABELS[index % len(TEXT_LABELS)] for index in range(JSONL_RECORDS)]
    extra = [
        {"id": f"j{number:0{ID_DIGITS}d}", "text": _unique_text(rng, label, seen), "label": label}
        for number, label in enumerate(extra_labels, 1)
    ]
    bad_content, bad_ids = _bad_csv_rows(first_id=good[0][0], rng=rng, seen=seen)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CSV_NAME).write_bytes(_csv_bytes([CSV_HEADER, *good]) + bad_content)
    (folder / JSONL_NAME).write_bytes(
        "".join(json.dumps(record) + LINE_END for record in extra).encode("utf-8")
    )
    return dict.fromkeys(TEXT_LABELS, count), len(extra), bad_ids


def _bad_csv_rows(
    *, first_id: str, rng: np.random.Generator, seen: set[str]
) -> tuple[bytes, tuple[str, ...]]:
    """The bad rows, as bytes: invalid UTF-8, empty text, unknown label, duplicate id, malformed."""
    not_utf8 = f'{BAD_NOT_UTF8_ID},"'.encode() + NOT_UTF8_TEXT + f'",sports{LINE_END}'.encode()
    valid_bad_rows = [
        (BAD_EMPTY_TEXT_ID, "", "cooking"),
        (BAD_UNKNOWN_LABEL_ID, _unique_text(rng, "sports", seen), UNKNOWN_TEXT_LABEL),
        (first_id, _unique_text(rng, DUPLICATE_ID_LABEL, seen), DUPLICATE_ID_LABEL),
    ]
    malformed = f'{BAD_MALFORMED_ID},"only two fields"{LINE_END}'.encode()
    content = not_utf8 + _csv_bytes(valid_bad_rows) + malformed
    ids = (BAD_NOT_UTF8_ID, *(row[0] for row in valid_bad_rows), BAD_MALFORMED_ID)
    return content, ids


def _csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _unique_text(rng: np.random.Generator, label: str, seen: set[str]) -> str:
    """A text never produced before in this run (so content keys never collide)."""
    while True:
        text = _random_text(rng, label)
        if text not in seen:
            seen.add(text)
            return text


def _random_text(rng: np.random.Generator, label: str) -> str:
    """8-25 words, at least 30 % from the label's topical words, with commas and quotes."""
    n_words = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
    fraction = rng.uniform(MIN_TOPICAL_FRACTION, MAX_TOPICAL_FRACTION)
    n_topical = max(math.ceil(MIN_TOPICAL_FRACTION * n_words), round(fraction * n_words))
    topical = rng.choice(TOPICAL_WORDS[label], size=n_topical)
    neutral = rng.choice(NEUTRAL_WORDS, size=n_words - n_topical)
    words = [str(word) for word in rng.permutation(np.concatenate([topical, neutral]))]
    for index in range(n_words - 1):
        if rng.random() < QUOTE_PROBABILITY:
            words[index] = f'"{words[index]}"'
        if rng.random() < COMMA_PROBABILITY:
            words[index] += ","
    ending = "!" if rng.random() < EXCLAIM_PROBABILITY else "."
    sentence = " ".join(words) + ending
    return sentence[0].upper() + sentence[1:]

"""The unlabelled inference batch under ``inference/``, with its true labels in ``expected.csv``.

Layout: ``images/new_00001.png`` … (good; every fifth a JPEG, the training images' format mix)
and ``images/new_corrupt.png`` (truncated), ``texts/new_texts.csv`` (``id,text``; good rows, an
empty text and a malformed row), and ``expected.csv`` (``kind,key,label`` for every good image and
text). Its size is fixed.

A *shifted* batch (``shifted=True``; ``python -m keras_lakehouse.sample_data --inference-only
--shifted``) holds the same files drawn from another distribution, for monitoring to flag: darker,
lower-contrast images turned by 90 degrees, and texts of made-up words outside the vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from keras_lakehouse.sample_data.images import IMAGE_LABELS, JPEG_EVERY, NAME_DIGITS
from keras_lakehouse.sample_data.layout import IMAGES_DIR, INFERENCE_STREAM, TEXTS_DIR
from keras_lakehouse.sample_data.sentences import MAX_WORDS, MIN_WORDS, unique_text
from keras_lakehouse.sample_data.shapes import encode, random_image
from keras_lakehouse.sample_data.texts import ID_DIGITS, LINE_END, TEXT_LABELS, csv_bytes

INFERENCE_IMAGES_PER_LABEL = 8
INFERENCE_TEXTS_PER_LABEL = 8
INFERENCE_BAD_IMAGE = "images/new_corrupt.png"
INFERENCE_BAD_TEXT_IDS = ("new_empty", "new_malformed")
INFERENCE_TEXTS_NAME = "new_texts.csv"
EXPECTED_NAME = "expected.csv"
SHIFT_DARKEN = 0.35  # a shifted image keeps this share of its brightness
SYLLABLES = ("ka", "zu", "vo", "ri", "pe", "mo", "xa", "lu", "qi", "no", "fe", "da", "wy", "tho")


def write_inference(folder: Path, *, seed: int, shifted: bool = False) -> tuple[int, int]:
    """Write the inference batch under ``folder``.

    Args:
        folder: The ``inference`` folder.
        seed: The run's seed.
        shifted: Draw the good images and texts from the shifted distribution (module doc).

    Returns:
        The number of good images and of good text rows written.
    """
    rng = np.random.default_rng([seed, INFERENCE_STREAM])
    images = folder / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    expected: list[tuple[str, str, str]] = []
    for label in IMAGE_LABELS:
        for _ in range(INFERENCE_IMAGES_PER_LABEL):
            number = len(expected) + 1
            fmt = "JPEG" if number % JPEG_EVERY == 0 else "PNG"
            name = f"new_{number:0{NAME_DIGITS}d}.{'jpg' if fmt == 'JPEG' else 'png'}"
            image = random_image(rng, label)
            (images / name).write_bytes(encode(_shift_image(image) if shifted else image, fmt))
            expected.append(("image", name, label))
    whole = encode(random_image(rng, "circle"), "PNG")
    (folder / INFERENCE_BAD_IMAGE).write_bytes(whole[: len(whole) // 2])
    image_count = len(expected)
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for label in TEXT_LABELS:
        for _ in range(INFERENCE_TEXTS_PER_LABEL):
            rows.append(
                (
                    f"new_{len(rows) + 1:0{ID_DIGITS}d}",
                    _made_up_text(rng, seen) if shifted else unique_text(rng, label, seen),
                    label,
                )
            )
    expected.extend(("text", row_id, label) for row_id, _, label in rows)
    empty_id, malformed_id = INFERENCE_BAD_TEXT_IDS
    texts = folder / TEXTS_DIR
    texts.mkdir(parents=True, exist_ok=True)
    (texts / INFERENCE_TEXTS_NAME).write_bytes(
        csv_bytes([("id", "text"), *((row_id, text) for row_id, text, _ in rows), (empty_id, "")])
        + f'{malformed_id},"two",fields,too many{LINE_END}'.encode()
    )
    (folder / EXPECTED_NAME).write_bytes(csv_bytes([("kind", "key", "label"), *expected]))
    return image_count, len(rows)


def _shift_image(image: Image.Image) -> Image.Image:
    """Darker, lower contrast (every channel scaled down) and turned by 90 degrees."""
    return image.point(lambda value: round(value * SHIFT_DARKEN)).transpose(
        Image.Transpose.ROTATE_90
    )


def _made_up_text(rng: np.random.Generator, seen: set[str]) -> str:
    """8-25 made-up words of two or three syllables: a vocabulary the models never saw."""
    while True:
        count = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
        words = ["".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))) for _ in range(count)]
        text = " ".join(words).capitalize() + "."
        if text not in seen:
            seen.add(text)
            return text

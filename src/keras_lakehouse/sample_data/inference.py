"""The unlabelled inference batch under ``inference/``, with its true labels in ``expected.csv``.

Layout: ``images/new_00001.png`` … (good) and ``images/new_corrupt.png`` (truncated),
``texts/new_texts.csv`` (``id,text``; good rows, an empty text and a malformed row), and
``expected.csv`` (``kind,key,label`` for every good image and text). Its size is fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_lakehouse.sample_data.images import IMAGE_LABELS, NAME_DIGITS
from keras_lakehouse.sample_data.layout import IMAGES_DIR, INFERENCE_STREAM, TEXTS_DIR
from keras_lakehouse.sample_data.sentences import unique_text
from keras_lakehouse.sample_data.shapes import encode, random_image
from keras_lakehouse.sample_data.texts import ID_DIGITS, LINE_END, TEXT_LABELS, csv_bytes

INFERENCE_IMAGES_PER_LABEL = 8
INFERENCE_TEXTS_PER_LABEL = 8
INFERENCE_BAD_IMAGE = "images/new_corrupt.png"
INFERENCE_BAD_TEXT_IDS = ("new_empty", "new_malformed")
INFERENCE_TEXTS_NAME = "new_texts.csv"
EXPECTED_NAME = "expected.csv"


def write_inference(folder: Path, *, seed: int) -> tuple[int, int]:
    """Write the inference batch under ``folder``.

    Args:
        folder: The ``inference`` folder.
        seed: The run's seed.

    Returns:
        The number of good images and of good text rows written.
    """
    rng = np.random.default_rng([seed, INFERENCE_STREAM])
    images = folder / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    expected: list[tuple[str, str, str]] = []
    for label in IMAGE_LABELS:
        for _ in range(INFERENCE_IMAGES_PER_LABEL):
            name = f"new_{len(expected) + 1:0{NAME_DIGITS}d}.png"
            (images / name).write_bytes(encode(random_image(rng, label), "PNG"))
            expected.append(("image", name, label))
    whole = encode(random_image(rng, "circle"), "PNG")
    (folder / INFERENCE_BAD_IMAGE).write_bytes(whole[: len(whole) // 2])
    image_count = len(expected)
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for label in TEXT_LABELS:
        for _ in range(INFERENCE_TEXTS_PER_LABEL):
            rows.append(
                (f"new_{len(rows) + 1:0{ID_DIGITS}d}", unique_text(rng, label, seen), label)
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

"""``generate``: the whole sample (images, texts, inference batch) under one raw data folder.

The same arguments always give byte-identical files. Next to the good records, every run also
writes a fixed set of bad and odd files (truncated, zero-byte, not an image, decompression bomb,
unusual colour modes, unknown label, invalid UTF-8, empty text, duplicate id, malformed CSV row)
so that the ingestion checks always have something to reject, whatever the size.

Layout under the output folder::

    images/<label>/<label>_00001.png|.jpg    good images, plus the special files (images.py)
    texts/reviews.csv                         id,text,label (good rows, then bad rows) (texts.py)
    texts/extra.jsonl                         good records as JSON lines
    inference/                                unlabelled batch and expected.csv (inference.py)
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_lakehouse.sample_data.images import (
    IMAGES_PER_LABEL,
    JPEG_EVERY,
    MIN_IMAGES_PER_LABEL,
    write_good_images,
    write_special_images,
)
from keras_lakehouse.sample_data.inference import (
    INFERENCE_BAD_IMAGE,
    INFERENCE_BAD_TEXT_IDS,
    write_inference,
)
from keras_lakehouse.sample_data.layout import (
    DEFAULT_SCALE,
    DEFAULT_SEED,
    IGNORED_MARKER,
    IMAGES_DIR,
    INFERENCE_DIR,
    TEXTS_DIR,
)
from keras_lakehouse.sample_data.texts import MIN_TEXTS_PER_LABEL, TEXTS_PER_LABEL, write_texts

logger = logging.getLogger(__name__)

# Why each count has its minimum, for the error messages.
IMAGES_MINIMUM_REASON = (
    f"every {JPEG_EVERY}th good image of a class is a JPEG, so that each class holds both formats"
)
TEXTS_MINIMUM_REASON = "the duplicate-id bad row reuses the id of a good row"


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


def generate(
    output: Path,
    *,
    scale: int = DEFAULT_SCALE,
    seed: int = DEFAULT_SEED,
    images_per_label: int | None = None,
    texts_per_label: int | None = None,
) -> SampleSummary:
    """Write the synthetic raw dataset under ``output``, replacing any earlier generated one.

    Only ``output/images``, ``output/texts`` and ``output/inference`` are removed first; nothing
    else is touched. A smaller sample is the start of the full one of the same ``scale``: its
    good images are the first ones of each class, byte for byte, and its good CSV rows a subset
    (same ids, texts and order); the special files, ``extra.jsonl`` and the inference batch do
    not depend on the size.

    Args:
        output: The raw data folder, e.g. ``data/01_raw``.
        scale: Multiplies the default numbers of good images and text rows per label.
        seed: Seed of every random choice: the same arguments give byte-identical files.
        images_per_label: Good images per label; default ``IMAGES_PER_LABEL * scale``. At least
            ``MIN_IMAGES_PER_LABEL``.
        texts_per_label: Good ``reviews.csv`` rows per label; default ``TEXTS_PER_LABEL * scale``.
            At least ``MIN_TEXTS_PER_LABEL``.

    Returns:
        A ``SampleSummary`` of what was written.

    Raises:
        ValueError: If ``scale`` is not a positive integer, or a count is not an integer of at
            least its minimum (nothing is written then).
    """
    check_scale(scale)
    if images_per_label is not None:
        check_images_per_label(images_per_label)
    if texts_per_label is not None:
        check_texts_per_label(texts_per_label)
    full_images, full_texts = IMAGES_PER_LABEL * scale, TEXTS_PER_LABEL * scale
    output = Path(output)
    for name in (IMAGES_DIR, TEXTS_DIR, INFERENCE_DIR):
        shutil.rmtree(output / name, ignore_errors=True)
    images_written = write_good_images(
        output / IMAGES_DIR,
        count=full_images if images_per_label is None else images_per_label,
        drawn=full_images,
        seed=seed,
    )
    bad_images, odd_images = write_special_images(output / IMAGES_DIR, seed=seed)
    texts_written, jsonl_records, bad_text_ids = write_texts(
        output / TEXTS_DIR,
        count=full_texts if texts_per_label is None else texts_per_label,
        drawn=full_texts,
        seed=seed,
    )
    inference_images, inference_texts = write_inference(output / INFERENCE_DIR, seed=seed)
    summary = SampleSummary(
        images_per_label=images_written,
        texts_per_label=texts_written,
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


def check_scale(scale: object) -> None:
    """Raise ``ValueError`` unless ``scale`` is a positive integer (``bool`` refused)."""
    if not _is_integer(scale) or scale < 1:
        raise ValueError(f"scale must be a positive integer. Received: scale={scale!r}")


def check_images_per_label(count: object) -> None:
    """Raise ``ValueError`` unless ``count`` is an integer ≥ ``MIN_IMAGES_PER_LABEL``."""
    _check_count("images_per_label", count, MIN_IMAGES_PER_LABEL, IMAGES_MINIMUM_REASON)


def check_texts_per_label(count: object) -> None:
    """Raise ``ValueError`` unless ``count`` is an integer ≥ ``MIN_TEXTS_PER_LABEL``."""
    _check_count("texts_per_label", count, MIN_TEXTS_PER_LABEL, TEXTS_MINIMUM_REASON)


def _check_count(name: str, count: object, minimum: int, reason: str) -> None:
    if not _is_integer(count) or count < minimum:
        raise ValueError(
            f"{name} must be an integer of at least {minimum} ({reason}). "
            f"Received: {name}={count!r}"
        )


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def generate_inference(
    output: Path | str, *, seed: int = DEFAULT_SEED, shifted: bool = False
) -> tuple[int, int]:
    """Replace only the inference batch under ``output/inference`` (the labelled data stays).

    Args:
        output: The raw data folder, e.g. ``data/01_raw``.
        seed: Seed of every random choice.
        shifted: Write the shifted batch monitoring must flag (``inference.write_inference``).

    Returns:
        The numbers of good images and texts written.
    """
    folder = Path(output) / INFERENCE_DIR
    shutil.rmtree(folder, ignore_errors=True)
    written = write_inference(folder, seed=seed, shifted=shifted)
    kind = "a shifted" if shifted else "an in-distribution"
    logger.info("Wrote %s inference batch under %s: %d images, %d texts", kind, folder, *written)
    return written

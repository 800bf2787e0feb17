"""The labelled texts: ``texts/reviews.csv`` (good rows, then bad rows) and ``extra.jsonl``.

``reviews.csv`` holds ``id,text,label`` rows; after the good ones come the bad rows the
ingestion checks must reject: invalid UTF-8, empty text, unknown label, a duplicate id and a
malformed row. ``extra.jsonl`` holds ``JSONL_RECORDS`` more good records as JSON lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_lakehouse.sample_data.layout import TEXT_STREAM
from keras_lakehouse.sample_data.sentences import unique_text

TEXT_LABELS = ("sports", "technology", "cooking")
TEXTS_PER_LABEL = 400
# The fewest good rows per label: the duplicate-id bad row reuses the first good row's id.
MIN_TEXTS_PER_LABEL = 1
JSONL_RECORDS = 30
ID_DIGITS = 6
CSV_NAME = "reviews.csv"
JSONL_NAME = "extra.jsonl"
CSV_HEADER = ("id", "text", "label")
LINE_END = "\n"

BAD_NOT_UTF8_ID = "bad_not_utf8"
BAD_EMPTY_TEXT_ID = "bad_empty_text"
BAD_UNKNOWN_LABEL_ID = "bad_unknown_label"
BAD_MALFORMED_ID = "bad_malformed"
UNKNOWN_TEXT_LABEL = "politics"
NOT_UTF8_TEXT = b"great match at the \xff\xfe caf\xe9 today"
DUPLICATE_ID_LABEL = "technology"


def write_texts(
    folder: Path, *, count: int, drawn: int, seed: int
) -> tuple[dict[str, int], int, tuple[str, ...]]:
    """Write ``reviews.csv`` with ``count`` good rows per label, and ``extra.jsonl``.

    ``max(count, drawn)`` texts per label are drawn and shuffled together; the good rows are
    the first ``count`` of each label, in shuffled order, each keeping the id of its shuffled
    position. So for any ``count <= drawn`` the good rows are a subset (same ids, texts and
    order) of those written with ``count == drawn``, ids then having gaps, and ``extra.jsonl``
    and the bad rows' texts are the same bytes.

    Args:
        folder: The ``texts`` folder.
        count: Good CSV rows to write per label.
        drawn: Texts drawn per label when fewer are written (the full-size count).
        seed: The run's seed.

    Returns:
        The good rows written per label, the number of JSONL records, and the bad rows' ids.
    """
    rng = np.random.default_rng([seed, TEXT_STREAM])
    seen: set[str] = set()
    per_label = max(count, drawn)
    rows = [
        (unique_text(rng, label, seen), label) for label in TEXT_LABELS for _ in range(per_label)
    ]
    good = [
        (f"t{position:0{ID_DIGITS}d}", *rows[index])
        for position, index in enumerate(rng.permutation(len(rows)), 1)
        if index % per_label < count
    ]
    extra_labels = [TEXT_LABELS[index % len(TEXT_LABELS)] for index in range(JSONL_RECORDS)]
    extra = [
        {"id": f"j{number:0{ID_DIGITS}d}", "text": unique_text(rng, label, seen), "label": label}
        for number, label in enumerate(extra_labels, 1)
    ]
    bad_content, bad_ids = _bad_csv_rows(first_id=good[0][0], rng=rng, seen=seen)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CSV_NAME).write_bytes(csv_bytes([CSV_HEADER, *good]) + bad_content)
    (folder / JSONL_NAME).write_bytes(
        "".join(json.dumps(record) + LINE_END for record in extra).encode("utf-8")
    )
    return dict.fromkeys(TEXT_LABELS, count), len(extra), bad_ids


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    """``rows`` as UTF-8 CSV with ``LINE_END`` line endings."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _bad_csv_rows(
    *, first_id: str, rng: np.random.Generator, seen: set[str]
) -> tuple[bytes, tuple[str, ...]]:
    """The bad rows, as bytes: invalid UTF-8, empty text, unknown label, duplicate id, malformed."""
    not_utf8 = f'{BAD_NOT_UTF8_ID},"'.encode() + NOT_UTF8_TEXT + f'",sports{LINE_END}'.encode()
    valid_bad_rows = [
        (BAD_EMPTY_TEXT_ID, "", "cooking"),
        (BAD_UNKNOWN_LABEL_ID, unique_text(rng, "sports", seen), UNKNOWN_TEXT_LABEL),
        (first_id, unique_text(rng, DUPLICATE_ID_LABEL, seen), DUPLICATE_ID_LABEL),
    ]
    malformed = f'{BAD_MALFORMED_ID},"only two fields"{LINE_END}'.encode()
    content = not_utf8 + csv_bytes(valid_bad_rows) + malformed
    ids = (BAD_NOT_UTF8_ID, *(row[0] for row in valid_bad_rows), BAD_MALFORMED_ID)
    return content, ids

"""Strict parsing of raw text files (CSV or JSON lines with ``id,text,label``).

Runs inside Spark executors, one file at a time. Every record of a file comes back exactly once,
accepted (``reason`` is ``None``) or with a quarantine reason; no input makes it raise. Bytes that
are not UTF-8 are never replaced: the record is quarantined as ``not_utf8`` (so is a JSON string
with a lone surrogate escape such as ``"\\ud800"``, which has no UTF-8 form).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from keras_lakehouse.ingest.reasons import (
    EMPTY_FILE,
    EMPTY_TEXT,
    MALFORMED_ROW,
    NOT_UTF8,
    PARSE_ERROR,
    TEXT_TOO_LONG,
    UNKNOWN_LABEL,
    UNSUPPORTED_FORMAT,
)

REQUIRED_FIELDS = ("id", "text", "label")
UNLABELLED_FIELDS = ("id", "text")  # records to score (batch inference)

PREVIEW_MAX_CHARS = 200
_SURROGATES = re.compile("[\udc80-\udcff\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextRecord:
    """One record of a raw text file, accepted or with a reason."""

    source: str
    line: int
    id: str | None = None
    text: str | None = None
    label: str | None = None
    text_sha256: str | None = None
    reason: str | None = None
    detail: str | None = None
    raw: str | None = None


def parse_text_file(
    source: str,
    content: bytes,
    *,
    allowed_labels: frozenset[str] | set[str],
    max_text_chars: int,
    labelled: bool = True,
) -> list[TextRecord]:
    """Parse one raw file into records.

    Args:
        source: The file's path (kept for lineage and quarantine rows).
        content: The file's bytes.
        allowed_labels: Labels accepted in the ``label`` field.
        max_text_chars: Longest text accepted.
        labelled: Whether records carry a ``label`` (training data) or not (records to score:
            only ``id`` and ``text`` are required, and ``label`` is ignored).

    Returns:
        One ``TextRecord`` per record (blank lines are not records); a file with no record is one
        ``empty_file`` record. Never raises: should parsing itself fail, the file is one
        ``parse_error`` record with the exception as detail, and the other files go on.
    """
    try:
        records = _parse(source, content, allowed_labels, max_text_chars, labelled=labelled)
    except Exception as error:  # last resort: one file must not fail the Spark job
        detail = _preview(f"{type(error).__name__}: {error}")
        return [TextRecord(source=source, line=0, reason=PARSE_ERROR, detail=detail)]
    if not records:
        detail = "file has no records (a header or blank lines only)"
        return [TextRecord(source=source, line=0, reason=EMPTY_FILE, detail=detail)]
    return records


def has_surrogates(value: str) -> bool:
    """Whether ``value`` holds code points with no UTF-8 form: bytes of a file that are not UTF-8
    (decoded with ``surrogateescape``) or lone surrogates (a JSON ``"\\ud800"`` escape)."""
    return _SURROGATES.search(value) is not None


def _parse(
    source: str,
    content: bytes,
    allowed_labels: frozenset[str] | set[str],
    max_text_chars: int,
    *,
    labelled: bool,
) -> list[TextRecord]:
    suffix = PurePosixPath(source).suffix.lower()
    if not content.strip():
        return [TextRecord(source=source, line=0, reason=EMPTY_FILE, detail="file has no content")]
    decoded = content.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    required = REQUIRED_FIELDS if labelled else UNLABELLED_FIELDS
    if suffix == ".csv":
        fields = _csv_records(decoded, required)
    elif suffix == ".jsonl":
        fields = _jsonl_records(decoded, required)
    else:
        return [
            TextRecord(
                source=source,
                line=0,
                reason=UNSUPPORTED_FORMAT,
                detail=f"suffix {suffix!r} is not one of ['.csv', '.jsonl']",
            )
        ]
    return [
        _check(source, line, values, problem, allowed_labels if labelled else None, max_text_chars)
        for line, values, problem in fields
    ]


def normalise_text(text: str) -> str:
    """Unicode NFC, case-folded, whitespace collapsed: the form used for content keys."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


def text_key(text: str) -> str:
    """SHA-256 of the normalised text: identical content gets the same key whatever its id."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


# Each record reader yields (line number, {field: value} or None, problem or None).
Fields = tuple[int, dict[str, str] | None, str | None]


def _csv_records(decoded: str, required: tuple[str, ...]) -> Iterator[Fields]:
    reader = csv.reader(io.StringIO(decoded, newline=""))
    header: list[str] | None = None
    first_line = 1
    try:
        for row in reader:
            line, first_line = first_line, reader.line_num + 1
            if not row or all(not value.strip() for value in row):
                continue
            if header is None:
                header = [name.strip() for name in row]
                continue
            missing = [name for name in required if name not in header]
            if missing:
                yield line, None, f"header {header} lacks columns {missing}"
            elif len(row) != len(header):
                yield line, None, f"expected {len(header)} fields {header}, found {len(row)}"
            else:
                yield line, dict(zip(header, row, strict=True)), None
    except csv.Error as error:
        yield first_line, None, f"unreadable CSV from here to the end of the file: {error}"


def _jsonl_records(decoded: str, required: tuple[str, ...]) -> Iterator[Fields]:
    for index, text_line in enumerate(decoded.split("\n"), start=1):
        if not text_line.strip():
            continue
        if _SURROGATES.search(text_line):
            yield index, {"raw": text_line}, NOT_UTF8
            continue
        try:
            value = json.loads(text_line)
        except ValueError as error:
            yield index, None, f"not JSON: {error}"
            continue
        except RecursionError:
            yield index, None, "not JSON: nested too deeply to read"
            continue
        if not isinstance(value, dict) or not all(
            isinstance(value.get(name), str) for name in required
        ):
            yield index, None, f"expected an object with string fields {list(required)}"
            continue
        yield index, {name: value[name] for name in required}, None


def _check(
    source: str,
    line: int,
    values: dict[str, str] | None,
    problem: str | None,
    allowed_labels: frozenset[str] | set[str] | None,
    max_text_chars: int,
) -> TextRecord:
    """One record's verdict; ``allowed_labels=None`` for unlabelled records (no label check)."""
    where = {"source": source, "line": line}
    if problem == NOT_UTF8 or (values and any(_SURROGATES.search(v) for v in values.values())):
        bad = [name for name, value in (values or {}).items() if _SURROGATES.search(value)]
        return TextRecord(
            **where,
            reason=NOT_UTF8,
            detail=f"bytes that are not UTF-8 in {bad}",
            raw=_preview(" | ".join((values or {}).values())),
        )
    if values is None:
        return TextRecord(**where, reason=MALFORMED_ROW, detail=problem)
    record_id, text = values["id"], values["text"]
    label = values.get("label") if allowed_labels is not None else None
    record = {"id": record_id.strip() or None, "label": label, "raw": _preview(text)}
    if not record_id.strip():
        return TextRecord(**where, **record, reason=MALFORMED_ROW, detail="empty id")
    if not text.strip():
        return TextRecord(**where, **record, reason=EMPTY_TEXT, detail="text is empty")
    if allowed_labels is not None and label not in allowed_labels:
        return TextRecord(
            **where,
            **record,
            reason=UNKNOWN_LABEL,
            detail=f"label {label!r} is not one of {sorted(allowed_labels)}",
        )
    if len(text) > max_text_chars:
        return TextRecord(
            **where,
            **record,
            reason=TEXT_TOO_LONG,
            detail=f"{len(text)} characters is above the cap of {max_text_chars}",
        )
    return TextRecord(
        **where, id=record_id.strip(), text=text, label=label, text_sha256=text_key(text)
    )


def _preview(value: str) -> str:
    """A printable excerpt: bytes that are not UTF-8 are shown as escapes (``\\xff``), never
    replaced; so are lone surrogates from JSON escapes (``\\ud800``), which have no UTF-8 form."""
    return _SURROGATES.sub(_escape, value[: PREVIEW_MAX_CHARS * 2])[:PREVIEW_MAX_CHARS]


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

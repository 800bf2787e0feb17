"""Strict parsing of raw text files."""

from __future__ import annotations

import json

import pytest

from keras_lakehouse.ingest import reasons, texts
from keras_lakehouse.ingest.texts import normalise_text, parse_text_file, text_key

LABELS = frozenset({"sports", "cooking"})


def parse(source: str, content: bytes, max_text_chars: int = 100) -> list[texts.TextRecord]:
    return parse_text_file(source, content, allowed_labels=LABELS, max_text_chars=max_text_chars)


def reason_by_id(records: list[texts.TextRecord]) -> dict[str | None, str | None]:
    return {record.id or f"line{record.line}": record.reason for record in records}


def test_good_csv_rows_are_accepted_with_lineage_and_key() -> None:
    content = b'id,text,label\na1,"Goal, late in the game",sports\na2,Stir the soup,cooking\n'
    records = parse("/raw/a.csv", content)
    assert [(r.id, r.text, r.label, r.line, r.reason) for r in records] == [
        ("a1", "Goal, late in the game", "sports", 2, None),
        ("a2", "Stir the soup", "cooking", 3, None),
    ]
    assert records[0].source == "/raw/a.csv"
    assert records[0].text_sha256 == text_key("Goal, late in the game")


def test_multiline_quoted_field_is_one_record_at_its_first_line() -> None:
    content = b'id,text,label\na1,"two\nlines",sports\na2,next,sports\n'
    records = parse("a.csv", content)
    assert [(r.id, r.line, r.text) for r in records] == [
        ("a1", 2, "two\nlines"),
        ("a2", 4, "next"),
    ]


def test_non_utf8_bytes_are_quarantined_not_replaced() -> None:
    content = b"id,text,label\nb1,caf\xe9 \xff,sports\nb2,fine,sports\n"
    records = parse("a.csv", content)
    assert records[0].reason == reasons.NOT_UTF8
    assert records[0].id is None  # nothing undecodable reaches a table column
    assert "\\xe9" in records[0].raw  # shown as an escape for the person reading the row
    assert "\ufffd" not in (records[0].raw or "")
    assert records[1].reason is None


def test_empty_text_is_quarantined() -> None:
    assert reason_by_id(parse("a.csv", b'id,text,label\ne1,"  ",cooking\n')) == {"e1": "empty_text"}


def test_unknown_label_is_quarantined_with_the_allowed_set() -> None:
    records = parse("a.csv", b"id,text,label\nu1,a vote,politics\n")
    assert records[0].reason == reasons.UNKNOWN_LABEL
    assert "'politics'" in records[0].detail
    assert "cooking" in records[0].detail


def test_row_with_missing_field_is_malformed() -> None:
    records = parse("a.csv", b'id,text,label\nm1,"only two fields"\n')
    assert records[0].reason == reasons.MALFORMED_ROW
    assert "found 2" in records[0].detail


def test_header_without_label_makes_every_row_malformed() -> None:
    records = parse("a.csv", b"id,text\nx1,hello\nx2,world\n")
    assert [r.reason for r in records] == [reasons.MALFORMED_ROW] * 2
    assert "['label']" in records[0].detail


def test_empty_id_is_malformed() -> None:
    assert parse("a.csv", b"id,text,label\n,hello,sports\n")[0].reason == reasons.MALFORMED_ROW


def test_too_long_text_is_quarantined() -> None:
    record = parse("a.csv", b"id,text,label\nl1,abcdef,sports\n", max_text_chars=5)[0]
    assert record.reason == reasons.TEXT_TOO_LONG


def test_blank_lines_and_bom_are_not_records() -> None:
    records = parse("a.csv", b"\xef\xbb\xbfid,text,label\n\nb1,ok,sports\n\n")
    assert [(r.id, r.reason) for r in records] == [("b1", None)]


def test_jsonl_records_and_their_failures() -> None:
    lines = [
        json.dumps({"id": "j1", "text": "boil pasta", "label": "cooking"}).encode(),
        b"{not json",
        json.dumps({"id": "j3", "text": "x"}).encode(),
        b'{"id": "j4", "text": "caf\xe9", "label": "sports"}',
        json.dumps({"id": "j5", "text": "", "label": "sports"}).encode(),
    ]
    records = parse("b.jsonl", b"\n".join(lines) + b"\n")
    assert [(r.line, r.reason) for r in records] == [
        (1, None),
        (2, reasons.MALFORMED_ROW),
        (3, reasons.MALFORMED_ROW),
        (4, reasons.NOT_UTF8),
        (5, reasons.EMPTY_TEXT),
    ]


def test_unsupported_file_is_one_quarantine_record() -> None:
    records = parse("notes.txt", b"anything")
    assert [(r.line, r.reason) for r in records] == [(0, reasons.UNSUPPORTED_FORMAT)]


@pytest.mark.parametrize(
    ("left", "right"), [("Hello  World", "hello world"), ("Cafe\u0301", "Café"), (" a\tb ", "A B")]
)
def test_equivalent_texts_share_a_key(left: str, right: str) -> None:
    assert normalise_text(left) == normalise_text(right)
    assert text_key(left) == text_key(right)


def test_empty_file_is_one_quarantine_record() -> None:
    assert [(r.line, r.reason) for r in parse("empty.csv", b" \n")] == [(0, reasons.EMPTY_FILE)]

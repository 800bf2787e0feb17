"""Hostile input never stops a run: every input ends as a bronze row or a quarantine row with a
reason (the text parser, the image check), or as exit status 2 or 3 and one line (the predict
command) — never as an exception out of a UDF or a traceback.

Hypothesis drives each check with arbitrary bytes, structures and sizes; the profile is bounded
and deterministic, and every input that once crashed is kept as an ``@example``.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from keras_lakehouse.ingest import images as imaging
from keras_lakehouse.ingest import reasons, texts
from keras_lakehouse.ingest.texts import TextRecord, parse_text_file, text_key
from keras_lakehouse.serving import predict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "hostile",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE = settings.get_profile("hostile")

LABELS = frozenset({"sports", "cooking"})
MAX_TEXT_CHARS = 40
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "GIF"})
MAX_PIXELS = 64 * 64
INT32_MAX = 2**31 - 1

# Crafted records that once escaped the parser (and the pandas UDF around it).
LONE_SURROGATE_LINE = b'{"id": "h1", "text": "\\ud800", "label": "sports"}'  # UnicodeEncodeError
DEEP_NESTING_LINE = b"[" * 100_000 + b"]" * 100_000  # RecursionError from json.loads

# Every character, lone surrogates included (a JSON ``\ud800`` escape decodes to one).
any_char = st.characters() | st.characters(categories=["Cs"])
any_text = st.text(any_char, max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity are written as bare literals
    | any_text
    | st.sampled_from(sorted(LABELS))
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)


# ---- the text parser -------------------------------------------------------------------------
def parse(source: str, content: bytes, *, labelled: bool = True) -> list[TextRecord]:
    return parse_text_file(
        source, content, allowed_labels=LABELS, max_text_chars=MAX_TEXT_CHARS, labelled=labelled
    )


def assert_each_record_is_bronze_or_quarantine(
    records: list[TextRecord], source: str, *, labelled: bool
) -> None:
    assert records, "a file must leave at least one row (bronze or quarantine)"
    lines = [record.line for record in records]
    assert lines == sorted(set(lines)), f"one record per line, in order. Received: {lines}"
    for record in records:
        assert record.source == source
        assert 0 <= record.line <= INT32_MAX  # an IntegerType column
        for name in ("id", "text", "label", "text_sha256", "reason", "detail", "raw"):
            value = getattr(record, name)
            assert value is None or isinstance(value, str), (name, value)
            if value is not None:
                value.encode("utf-8")  # Arrow and Delta take valid UTF-8 only
        if record.reason is None:
            assert record.detail is None
            assert isinstance(record.id, str)
            assert record.id
            assert record.id == record.id.strip()
            assert isinstance(record.text, str)
            assert record.text.strip()
            assert len(record.text) <= MAX_TEXT_CHARS
            assert record.text_sha256 == text_key(record.text)
            assert record.label in LABELS if labelled else record.label is None
        else:
            assert record.reason in reasons.TEXT_PARSE_REASONS, record.reason
            assert record.detail, f"a quarantine row says why. Received: {record}"
            assert record.text is None
            assert record.text_sha256 is None


def non_blank_lines(content: bytes) -> list[int]:
    """A JSON-lines record is a line (split on ``\\n``) that is not blank."""
    decoded = content.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    return [number for number, line in enumerate(decoded.split("\n"), 1) if line.strip()]


@HOSTILE
@given(
    content=st.binary(max_size=400),
    source=st.sampled_from(["a.csv", "a.jsonl", "B.JSONL", "notes.txt", "no_suffix"]),
    labelled=st.booleans(),
)
@example(content=LONE_SURROGATE_LINE, source="a.jsonl", labelled=True)  # was UnicodeEncodeError
@example(content=DEEP_NESTING_LINE, source="a.jsonl", labelled=False)  # was RecursionError
@example(content=b"id,text,label\n", source="a.csv", labelled=True)  # was no row at all
@example(content=b"\xc2\x85\n\xe2\x80\xa8", source="a.jsonl", labelled=True)  # was no row at all
@example(  # a field above csv.field_size_limit(): one malformed_row to the end of the file
    content=b'id,text,label\n1,"' + b"x" * 200_000 + b'",sports\n', source="a.csv", labelled=True
)
@example(content=b"id,text,label\n1,x\x00y,sports\n", source="a.csv", labelled=True)  # NUL
def test_arbitrary_bytes_become_records_with_a_verdict(
    content: bytes, source: str, labelled: bool
) -> None:
    records = parse(source, content, labelled=labelled)
    assert_each_record_is_bronze_or_quarantine(records, source, labelled=labelled)


@st.composite
def json_lines_files(draw: st.DrawFn) -> bytes:
    def field() -> st.SearchStrategy:
        return st.sampled_from(sorted(LABELS)) | any_text | json_values

    objects = st.fixed_dictionaries(
        {}, optional={"id": field(), "text": field(), "label": field(), "extra": json_values}
    )
    values = draw(st.lists(objects | json_values, max_size=6))
    lines = [
        json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        for value in values
    ]
    lines += draw(st.lists(st.sampled_from([b"", b"  ", b"\t", b"{", b"\x00"]), max_size=2))
    lines = draw(st.permutations(lines))
    separator = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + separator.join(lines)


@HOSTILE
@given(content=json_lines_files(), labelled=st.booleans())
@example(content=LONE_SURROGATE_LINE, labelled=True)  # was UnicodeEncodeError
@example(content=DEEP_NESTING_LINE, labelled=True)  # was RecursionError
# A duplicate key: the last "text" (a lone surrogate) wins.
@example(content=b'{"id": "h2", "text": "ok", "label": "sports", "text": "\\udfff"}', labelled=True)
def test_every_non_blank_json_line_is_one_record(content: bytes, labelled: bool) -> None:
    records = parse("a.jsonl", content, labelled=labelled)
    assert_each_record_is_bronze_or_quarantine(records, "a.jsonl", labelled=labelled)
    expected = non_blank_lines(content)
    if content.strip() and expected:
        assert [record.line for record in records] == expected
    else:
        assert [(record.line, record.reason) for record in records] == [(0, reasons.EMPTY_FILE)]


@HOSTILE
@given(
    record_id=st.text(min_size=1, max_size=10).filter(str.strip),
    text=st.text(min_size=1, max_size=MAX_TEXT_CHARS).filter(str.strip),
    label=st.sampled_from(sorted(LABELS)),
    ensure_ascii=st.booleans(),
)
def test_a_well_formed_json_line_is_accepted_as_written(
    record_id: str, text: str, label: str, ensure_ascii: bool
) -> None:
    line = json.dumps({"id": record_id, "text": text, "label": label}, ensure_ascii=ensure_ascii)
    [record] = parse("a.jsonl", line.encode("utf-8"))
    assert (record.reason, record.id, record.text, record.label) == (
        None,
        record_id.strip(),
        text,
        label,
    )


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A CSV file written by ``csv.writer`` and the number of rows that are not blank."""
    header = draw(st.permutations(["id", "text", "label"]))
    header += draw(st.lists(st.sampled_from(["extra", "id", ""]), max_size=1))
    cell = st.sampled_from(sorted(LABELS)) | st.text(any_char, max_size=MAX_TEXT_CHARS + 5)
    rows = draw(st.lists(st.lists(cell, max_size=len(header) + 1), max_size=6))
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *rows])
    content = buffer.getvalue().encode("utf-8", "surrogatepass")
    return content, sum(1 for row in rows if any(value.strip() for value in row))


@HOSTILE
@given(file=csv_files(), labelled=st.booleans())
def test_every_non_blank_csv_row_is_one_record(file: tuple[bytes, int], labelled: bool) -> None:
    content, rows = file
    records = parse("a.csv", content, labelled=labelled)
    assert_each_record_is_bronze_or_quarantine(records, "a.csv", labelled=labelled)
    if rows:
        assert len(records) == rows
    else:
        assert [(record.line, record.reason) for record in records] == [(0, reasons.EMPTY_FILE)]


def test_crafted_json_lines_are_quarantined_and_the_rest_of_the_file_kept() -> None:
    good = b'{"id": "g1", "text": "a late goal", "label": "sports"}'
    content = b"\n".join([good, LONE_SURROGATE_LINE, DEEP_NESTING_LINE, good.replace(b"g1", b"g2")])
    records = parse("a.jsonl", content)
    assert [(record.line, record.id, record.reason) for record in records] == [
        (1, "g1", None),
        (2, None, reasons.NOT_UTF8),  # the id is in ``raw``, as for any not_utf8 record
        (3, None, reasons.MALFORMED_ROW),
        (4, "g2", None),
    ]
    assert records[1].raw == "h1 | \\ud800 | sports"
    assert "nested too deeply" in records[2].detail


def test_a_csv_with_only_a_header_is_one_empty_file_record() -> None:
    [record] = parse("a.csv", b"\xef\xbb\xbfid,text,label\r\n\r\n")
    assert (record.line, record.reason) == (0, reasons.EMPTY_FILE)
    assert "no records" in record.detail


# ---- the image check -------------------------------------------------------------------------
def encode(fmt: str, mode: str, size: tuple[int, int], seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims ``width``×``height``, over 64 zero bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


VALID_IMAGES = [
    encode("PNG", "RGB", (8, 6)),
    encode("PNG", "RGBA", (5, 5), seed=1),
    encode("PNG", "P", (7, 3), seed=2),
    encode("PNG", "I;16", (4, 4), seed=3),
    encode("JPEG", "RGB", (9, 9), seed=4),
    encode("JPEG", "L", (3, 8), seed=5),
    encode("JPEG", "CMYK", (4, 4), seed=6),
    encode("GIF", "P", (6, 6), seed=7),
    encode("BMP", "RGB", (4, 4), seed=8),  # a format outside the allow-list
]
dimensions = st.sampled_from([0, 1, 64, 65, 65_535, INT32_MAX, 2**31, 2**32 - 1]) | st.integers(
    0, 2**32 - 1
)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    content = bytearray(draw(st.sampled_from(VALID_IMAGES)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "dimensions"]))
        if kind == "truncate":
            del content[draw(st.integers(0, max(len(content) - 1, 0))) :]
        elif kind == "flip" and content:
            at = draw(st.integers(0, len(content) - 1))
            content[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            at = draw(st.integers(0, len(content)))
            content[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif content.startswith(b"\x89PNG") and len(content) >= 33:  # IHDR, CRC kept valid
            content[16:24] = struct.pack(">II", draw(dimensions), draw(dimensions))
            content[29:33] = struct.pack(">I", zlib.crc32(bytes(content[12:29])))
        elif content.startswith(b"GIF") and len(content) >= 10:
            content[6:10] = struct.pack("<HH", draw(dimensions) % 2**16, draw(dimensions) % 2**16)
        elif (start := content.find(b"\xff\xc0")) >= 0 and len(content) >= start + 9:
            dims = struct.pack(">HH", draw(dimensions) % 2**16, draw(dimensions) % 2**16)
            content[start + 5 : start + 9] = dims
    return bytes(content)


def assert_image_verdict(check: imaging.ImageCheck) -> None:
    for name in ("width", "height"):
        value = getattr(check, name)
        assert value is None or 0 < value <= INT32_MAX, (name, value)  # an IntegerType column
    for name in ("reason", "detail", "format", "mode"):
        value = getattr(check, name)
        assert value is None or isinstance(value, str), (name, value)
        if value is not None:
            value.encode("utf-8")
    if check.reason is None:
        assert check.detail is None
        assert check.format in IMAGE_FORMATS
        assert check.width * check.height <= MAX_PIXELS
        assert check.mode
    else:
        assert check.reason in reasons.IMAGE_DECODE_REASONS, check.reason
        assert check.detail
        assert len(check.detail) <= imaging.DETAIL_MAX_CHARS


def inspect(content: bytes) -> imaging.ImageCheck:
    return imaging.inspect_image(content, allowed_formats=IMAGE_FORMATS, max_pixels=MAX_PIXELS)


@HOSTILE
@given(content=st.binary(max_size=600))
@example(content=b"")
@example(content=b"\x89PNG\r\n\x1a\n")
@example(content=b"GIF89a")
def test_arbitrary_bytes_get_an_image_verdict(content: bytes) -> None:
    assert_image_verdict(inspect(content))


@HOSTILE
@given(content=mutated_images())
@example(content=png_with_header(10_000, 10_000))  # Pillow's warning band: was `corrupt`
@example(content=png_with_header(2**32 - 1, 1))
@example(content=png_with_header(2**32 - 1, 0))
def test_mutated_images_get_a_verdict(content: bytes) -> None:
    assert_image_verdict(inspect(content))


@pytest.mark.parametrize("side", [10_000, 40_000])
def test_a_header_above_pillows_pixel_limits_is_too_many_pixels(side: int) -> None:
    """100M pixels makes Pillow warn (an error here), 1.6G makes it raise: both are bombs."""
    check = inspect(png_with_header(side, side))
    assert check.reason == reasons.TOO_MANY_PIXELS, check


def test_every_valid_image_is_accepted_or_has_a_format_reason() -> None:
    verdicts = [inspect(content).reason for content in VALID_IMAGES]
    assert verdicts == [None] * 8 + [reasons.UNSUPPORTED_FORMAT]


# ---- the predict command ---------------------------------------------------------------------
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """``predict.main`` in-process on the project's configuration, from an empty folder; the
    champion lookup is stubbed (no registry here), so an item that passes the checks ends as
    exit status 3."""

    def no_champion(*_: object) -> None:
        raise LookupError("no champion in this test")

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = predict.main(["--project", str(PROJECT_ROOT), *argv])
        return status, out.getvalue(), err.getvalue()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predict, "_load_champion", no_champion)
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield run


def assert_one_error_line(result: tuple[int, str, str], status: int | None = None) -> None:
    code, out, err = result
    assert code in {predict.BAD_INPUT, predict.NO_MODEL} if status is None else code == status
    assert out == ""
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    assert len(err.splitlines()) == 1, err
    assert err[:-1].isprintable(), err  # no control characters, no lone surrogates


INGESTION = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_ingestion.yml").read_text())
TEXT_CAP = INGESTION["ingestion"]["texts"]["max_text_chars"]


@settings(HOSTILE, max_examples=50)
@given(item=st.text(any_char, max_size=60))
@example(item="x" * 300)  # OSError: [Errno 36] File name too long, from Path.is_file
@example(item="\udcff text")  # argv bytes that are not UTF-8: was sent on to the model
@example(item="x" * (TEXT_CAP + 1))
@example(item=" \n\t")
def test_a_text_item_is_checked_like_ingestion(cli: Cli, item: str) -> None:
    bad = not item.strip() or len(item) > TEXT_CAP or texts.has_surrogates(item)
    result = cli("--model", "lstm", "--", item)
    assert_one_error_line(result, predict.BAD_INPUT if bad else predict.NO_MODEL)


@settings(HOSTILE, max_examples=30)  # two commands per example
@given(item=st.text(any_char, max_size=60) | st.sampled_from(["x" * 300 + ".png", "a\x00b"]))
@example(item="x" * 300)  # OSError: [Errno 36] File name too long, from Path.is_file
@example(item="a\x00b")  # with --model cnn: ValueError: embedded null byte
@example(item="a\x00b.png")  # a raw NUL in the error line
def test_any_item_ends_in_one_line(cli: Cli, item: str) -> None:
    assert_one_error_line(cli("--", item))
    assert_one_error_line(cli("--model", "cnn", "--", item), predict.BAD_INPUT)


@settings(HOSTILE, max_examples=40)
@given(
    content=st.binary(max_size=400) | mutated_images() | st.sampled_from(VALID_IMAGES),
    name=st.sampled_from(["item.png", "item.JPG", "item", "line\nbreak.png", "tab\tname.gif"]),
)
@example(content=b"not an image", name="line\nbreak.png")  # the error was two lines
def test_any_file_ends_in_one_line(cli: Cli, content: bytes, name: str) -> None:
    path = Path.cwd() / name  # the empty folder the command runs from
    path.write_bytes(content)
    assert_one_error_line(cli(str(path)))


def test_an_unknown_environment_is_bad_input(cli: Cli) -> None:
    """Was a MissingConfigException traceback."""
    code, _, err = cli("--env", "no_such_env", "--", "a late goal")
    assert code == predict.BAD_INPUT
    assert "conf/no_such_env" in err


def test_a_device_is_never_read_as_an_image(cli: Cli) -> None:
    """``/dev/zero`` never ends: it was read whole, until memory ran out."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    code, _, err = cli("--model", "cnn", "/dev/zero")
    assert code == predict.BAD_INPUT
    assert "not a regular file" in err


def test_a_file_above_the_byte_cap_is_too_large(cli: Cli) -> None:
    cap = INGESTION["ingestion"]["images"]["max_bytes"]
    path = Path.cwd() / "big.png"
    with path.open("wb") as file:
        file.truncate(cap + 1)  # sparse: no 20 MB written
    code, _, err = cli(str(path))
    assert code == predict.BAD_INPUT
    assert "too_large" in err


# ---- Spark: one hostile record does not fail the job ------------------------------------------
def test_crafted_json_lines_are_quarantined_by_the_spark_job(
    spark, tmp_path: Path, file_log
) -> None:
    from keras_lakehouse.params import SuiteParams, TextIngestionParams
    from keras_lakehouse.pipelines.ingestion import nodes

    (tmp_path / "good.jsonl").write_bytes(
        b'{"id": "g1", "text": "boil the pasta", "label": "cooking"}\n'
    )
    (tmp_path / "crafted.jsonl").write_bytes(
        b"\n".join(
            [
                LONE_SURROGATE_LINE,
                DEEP_NESTING_LINE,
                b'{"id": "g2", "text": "a goal", "label": "sports"}',
            ]
        )
    )
    raw = file_log(tmp_path)
    settings = TextIngestionParams(
        allowed_labels=sorted(LABELS), max_text_chars=MAX_TEXT_CHARS, max_bytes=10_000_000
    )
    suite = SuiteParams.model_validate(
        {
            "table": "texts_bronze",
            "expectations": [
                {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}
            ],
        }
    )
    checked, _ = nodes.check_raw_texts(raw, file_log.known_texts(), settings)
    bronze, quarantine, counts = nodes.route_texts(checked, suite)
    assert sorted(row["id"] for row in bronze.collect()) == ["g1", "g2"]
    rejected = {(Path(row["source"]).name, row["line"]): row for row in quarantine.collect()}
    assert {where: row["reason"] for where, row in rejected.items()} == {
        ("crafted.jsonl", 1): reasons.NOT_UTF8,
        ("crafted.jsonl", 2): reasons.MALFORMED_ROW,
    }
    assert rejected[("crafted.jsonl", 1)]["raw"] == "h1 | \\ud800 | sports"
    assert counts["raw"] == 4

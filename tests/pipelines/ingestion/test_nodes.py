"""Ingestion nodes on tiny folders of files made by each test."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyspark.sql import DataFrame, SparkSession

from keras_lakehouse.ingest.routing import IMAGES_BRONZE_COLUMNS, TEXTS_BRONZE_COLUMNS
from keras_lakehouse.ingest.spark_checks import check_image_files
from keras_lakehouse.params import ImageIngestionParams, SuiteParams, TextIngestionParams
from keras_lakehouse.pipelines.ingestion import nodes

IMAGE_SETTINGS = ImageIngestionParams(
    allowed_labels=["circle", "square"],
    allowed_formats=["PNG", "JPEG"],
    max_bytes=100_000,
    max_pixels=1_000_000,
)
TEXT_SETTINGS = TextIngestionParams(
    allowed_labels=["sports", "cooking"], max_text_chars=200, max_bytes=100_000
)
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def project_suite(name: str) -> SuiteParams:
    """The project's own bronze suite (conf/base/expectations): the one definition that both the
    ingestion's row rules and the data-quality gate read."""
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    return SuiteParams.model_validate(loader["parameters"][name])


IMAGES_SUITE = project_suite("images_bronze_suite")
TEXTS_SUITE = project_suite("texts_bronze_suite")


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def noise_image(seed: int, mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def bomb_png(side: int = 40_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def by_name(frame: DataFrame, column: str = "path") -> dict[str, dict]:
    return {Path(row[column]).name: row.asDict() for row in frame.collect()}


@pytest.fixture(scope="module")
def image_batches(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, file_log):
    good = png(noise_image(1))
    truncated = png(noise_image(2))
    root = write_files(
        tmp_path_factory.mktemp("images"),
        {
            "circle/good.png": good,
            "circle/same_bytes_again.png": good,
            "square/good.jpg": png(noise_image(3), "JPEG"),
            "square/gray.png": png(noise_image(4, "L")),
            "square/rgba.png": png(noise_image(5, "RGBA")),
            "circle/cmyk.jpg": png(noise_image(6, "CMYK"), "JPEG"),
            "circle/truncated.png": truncated[: len(truncated) // 2],
            "square/zero.png": b"",
            "square/not_an_image.jpg": b"this is not an image\n",
            "circle/bomb.png": bomb_png(),
            "circle/huge.png": b"\x00" * 100_001,
            "circle/anim.gif": png(noise_image(7), "GIF"),
            "hexagon/good.png": png(noise_image(8)),
        },
    )
    checked, _ = nodes.check_raw_images(file_log(root), file_log.known_images(), IMAGE_SETTINGS)
    bronze, quarantine, counts = nodes.route_images(checked, IMAGES_SUITE)
    return by_name(bronze), by_name(quarantine), counts


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("truncated.png", "truncated"),
        ("zero.png", "empty_file"),
        ("not_an_image.jpg", "not_an_image"),
        ("bomb.png", "too_many_pixels"),
        ("huge.png", "too_large"),
        ("anim.gif", "unsupported_format"),
        ("same_bytes_again.png", "duplicate_content"),
    ],
)
def test_bad_image_goes_to_quarantine_with_its_reason(image_batches, file_name, reason) -> None:
    bronze, quarantine, _ = image_batches
    assert file_name not in bronze
    assert quarantine[file_name]["reason"] == reason
    assert quarantine[file_name]["detail"]


def test_unknown_label_folder_is_quarantined(image_batches) -> None:
    _, quarantine, _ = image_batches
    row = quarantine["good.png"]  # hexagon/good.png; circle/good.png is in bronze
    assert (row["label"], row["reason"]) == ("hexagon", "unknown_label")


def test_duplicate_keeps_the_first_path_and_names_it(image_batches) -> None:
    bronze, quarantine, _ = image_batches
    assert bronze["good.png"]["label"] == "circle"
    assert quarantine["same_bytes_again.png"]["detail"].endswith("circle/good.png")
    assert quarantine["same_bytes_again.png"]["key"] == bronze["good.png"]["key"]


@pytest.mark.parametrize(("file_name", "mode"), [("gray.png", "L"), ("rgba.png", "RGBA")])
def test_grayscale_and_rgba_are_valid_bronze_rows(image_batches, file_name, mode) -> None:
    bronze, _, _ = image_batches
    assert bronze[file_name]["mode"] == mode
    assert (bronze[file_name]["width"], bronze[file_name]["height"]) == (24, 24)


def test_cmyk_jpeg_is_a_valid_bronze_row(image_batches) -> None:
    bronze, _, _ = image_batches
    assert (bronze["cmyk.jpg"]["format"], bronze["cmyk.jpg"]["mode"]) == ("JPEG", "CMYK")


def test_bronze_row_has_the_content_and_its_sha256(image_batches) -> None:
    import hashlib

    bronze, _, _ = image_batches
    row = bronze["good.jpg"]
    assert row["key"] == hashlib.sha256(row["content"]).hexdigest()
    assert row["label"] == "square"
    assert row["ingested_at"] is not None
    assert set(row) == {*IMAGES_BRONZE_COLUMNS, "ingested_at"}


def test_image_counts_are_conserved(image_batches) -> None:
    bronze, quarantine, counts = image_batches
    assert counts["raw"] == 13
    assert (counts["bronze"], counts["quarantine"]) == (len(bronze), len(quarantine)) == (5, 8)
    assert sum(counts["quarantine_by_reason"].values()) == counts["quarantine"]
    assert counts["quarantine_by_reason"]["unknown_label"] == 1


def test_bytes_an_earlier_run_accepted_are_a_duplicate_and_its_own_file_again_is_not(
    spark: SparkSession, tmp_path: Path, file_log, spark_uri
) -> None:
    """Against bronze as the run found it: a new file with bytes an earlier run accepted under
    another path is quarantined naming that path; the same file seen again (its run died before
    settling it) stays accepted, and its MERGE changes nothing."""
    import hashlib

    old, seen = png(noise_image(10)), png(noise_image(11))
    root = write_files(tmp_path / "raw", {"circle/again.png": old, "square/seen.png": seen})
    earlier = "file:/elsewhere/circle/old.png"
    known = spark.createDataFrame(
        [
            (hashlib.sha256(old).hexdigest(), earlier),
            (hashlib.sha256(seen).hexdigest(), spark_uri(root / "square/seen.png")),
        ],
        "key string, path string",
    )
    checked, _ = nodes.check_raw_images(file_log(root), known, IMAGE_SETTINGS)
    bronze, quarantine, counts = nodes.route_images(checked, IMAGES_SUITE)
    assert list(by_name(bronze)) == ["seen.png"]
    row = by_name(quarantine)["again.png"]
    assert row["reason"] == "duplicate_content"
    assert row["detail"] == f"same bytes as {earlier} (an earlier run)"
    assert counts["quarantine_by_reason"] == {"duplicate_content": 1}


def test_an_id_an_earlier_run_accepted_is_a_duplicate_and_its_own_line_again_is_not(
    spark: SparkSession, tmp_path: Path, file_log, spark_uri
) -> None:
    root = write_files(
        tmp_path / "raw",
        {"late.csv": b"id,text,label\nt1,a second t1,sports\nt2,the same row,cooking\n"},
    )
    late = spark_uri(root / "late.csv")
    known = spark.createDataFrame(
        [("t1", "file:/elsewhere/early.csv", 2), ("t2", late, 3)],
        "id string, source string, line int",
    )
    checked, _ = nodes.check_raw_texts(file_log(root), known, TEXT_SETTINGS)
    bronze, quarantine, _ = nodes.route_texts(checked, TEXTS_SUITE)
    assert list(by_name(bronze, "id")) == ["t2"]
    (row,) = quarantine.collect()
    assert (row["id"], row["reason"]) == ("t1", "duplicate_id")
    assert row["detail"] == "id first seen at file:/elsewhere/early.csv:2 (an earlier run)"


def test_missing_columns_fail_with_the_names(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("a", 1)], ["path", "length"])
    with pytest.raises(ValueError, match=r"Expected columns .* in raw_images.*missing \['content'"):
        check_image_files(frame, IMAGE_SETTINGS)


@pytest.fixture(scope="module")
def text_batches(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, file_log):
    root = write_files(
        tmp_path_factory.mktemp("texts"),
        {
            "a.csv": (
                b"id,text,label\n"
                b"t1,the match went to extra time,sports\n"
                b"t2,caf\xe9 \xff menu,cooking\n"
                b't3,"",cooking\n'
                b"t4,a vote,politics\n"
                b't5,"only two fields"\n'
                b"t6,roast the garlic,cooking\n"
            ),
            "b.jsonl": (
                b'{"id": "t1", "text": "a second t1", "label": "sports"}\n'
                b'{"id": "t7", "text": "whisk eggs", "label": "cooking"}\n'
            ),
            "notes.txt": b"free text",
            "empty.csv": b"",
        },
    )
    checked, _ = nodes.check_raw_texts(file_log(root), file_log.known_texts(), TEXT_SETTINGS)
    bronze, quarantine, counts = nodes.route_texts(checked, TEXTS_SUITE)
    quarantined = {
        (Path(row["source"]).name, row["line"]): row.asDict() for row in quarantine.collect()
    }
    return by_name(bronze, "id"), quarantined, counts


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (("a.csv", 3), "not_utf8"),
        (("a.csv", 4), "empty_text"),
        (("a.csv", 5), "unknown_label"),
        (("a.csv", 6), "malformed_row"),
        (("b.jsonl", 1), "duplicate_id"),
        (("notes.txt", 0), "unsupported_format"),
        (("empty.csv", 0), "empty_file"),
    ],
)
def test_bad_text_goes_to_quarantine_with_its_reason(text_batches, where, reason) -> None:
    _, quarantine, _ = text_batches
    assert quarantine[where]["reason"] == reason


def test_duplicate_id_keeps_the_first_record(text_batches) -> None:
    bronze, quarantine, _ = text_batches
    assert bronze["t1"]["text"] == "the match went to extra time"
    assert quarantine[("b.jsonl", 1)]["detail"].endswith("a.csv:2")


def test_text_bronze_rows_and_conservation(text_batches) -> None:
    bronze, quarantine, counts = text_batches
    assert sorted(bronze) == ["t1", "t6", "t7"]
    assert counts == {
        "raw": 10,
        "bronze": 3,
        "quarantine": 7,
        "quarantine_by_reason": {
            "duplicate_id": 1,
            "empty_file": 1,
            "empty_text": 1,
            "malformed_row": 1,
            "not_utf8": 1,
            "unknown_label": 1,
            "unsupported_format": 1,
        },
    }
    assert len(quarantine) == 7


def test_a_row_the_suite_rejects_is_quarantined_with_the_expectation_as_reason(
    spark: SparkSession, tmp_path: Path, file_log
) -> None:
    """An image ingestion accepts but the suite's per-row rule refuses (narrower than its
    min_value 16) is quarantined naming the expectation; the rest goes on (before, bronze kept
    it and the gate stopped this run and every later one)."""
    small = Image.fromarray(np.zeros((24, 10, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    root = write_files(
        tmp_path, {"circle/narrow.png": buffer.getvalue(), "circle/ok.png": png(noise_image(9))}
    )
    checked, _ = nodes.check_raw_images(file_log(root), file_log.known_images(), IMAGE_SETTINGS)
    bronze, quarantine, counts = nodes.route_images(checked, IMAGES_SUITE)
    (row,) = quarantine.collect()
    assert (Path(row["path"]).name, row["reason"], row["detail"]) == (
        "narrow.png",
        "expect_column_values_to_be_between(column=width)",
        "width=10",
    )
    assert [Path(r["path"]).name for r in bronze.collect()] == ["ok.png"]
    assert counts["quarantine_by_reason"] == {"expect_column_values_to_be_between(column=width)": 1}


@pytest.mark.usefixtures("spark")  # a row rule is a Spark Column: building one needs a session
def test_every_per_row_rule_of_the_suites_is_applied_at_ingestion() -> None:
    """One definition: each error-severity per-row expectation of a bronze suite is a row rule
    (none is skipped), on a column the ingestion produces."""
    from keras_lakehouse.quality.row_rules import is_row_check, row_rules

    for suite, columns in (
        (IMAGES_SUITE, IMAGES_BRONZE_COLUMNS),
        (TEXTS_SUITE, TEXTS_BRONZE_COLUMNS),
    ):
        expected = [
            f"{spec.expectation}(column={spec.kwargs['column']})"
            for spec in suite.expectations
            if spec.severity == "error" and is_row_check(spec.expectation)
        ]
        assert [reason for reason, _ in row_rules(suite)] == expected
        assert len(expected) >= 4
        assert all(reason.split("column=")[1].rstrip(")") in columns for reason in expected)

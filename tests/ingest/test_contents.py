"""File bytes are read by the executors for this run's files only, never above the cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_lakehouse.ingest.contents import local_path, with_content


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("file:/data/raw/a.png", "/data/raw/a.png"),
        ("file:///data/raw/a.png", "/data/raw/a.png"),
        ("file:/data/raw/a%20b%5B1%5D.png", "/data/raw/a b[1].png"),
        ("dbfs:/Volumes/main/kl/raw/a.png", "/Volumes/main/kl/raw/a.png"),
        ("/data/raw/a%20b.png", "/data/raw/a%20b.png"),  # no scheme: a plain path, as it is
    ],
)
def test_file_source_paths_map_to_the_files_the_executors_open(path, expected) -> None:
    assert local_path(path) == expected


@pytest.mark.parametrize("path", ["s3://bucket/raw/a.png", "dbfs:/tmp/a.png", "file://host/a"])
def test_paths_executors_cannot_open_are_refused_with_the_fix(path) -> None:
    with pytest.raises(ValueError, match="Volume"):
        local_path(path)


def test_bytes_are_read_within_the_cap_only(spark, tmp_path: Path) -> None:
    small, grown = tmp_path / "small.png", tmp_path / "grown.png"
    small.write_bytes(b"12345")
    grown.write_bytes(b"x" * 50)
    files = spark.createDataFrame(
        [
            (small.as_uri(), 5),
            (grown.as_uri(), 5),  # logged at 5 bytes, now 50: cut at the cap + 1 and marked
            ((tmp_path / "gone.png").as_uri(), 5),  # logged, then deleted
            ((tmp_path / "huge.png").as_uri(), 10**12),  # above the cap: never opened
            ((tmp_path / "empty.png").as_uri(), 0),
        ],
        "path string, length long",
    )
    rows = {Path(row.path).name: row for row in with_content(files, max_bytes=10).collect()}
    assert (rows["small.png"].content, rows["small.png"].read_error) == (b"12345", None)
    assert rows["grown.png"].content is None
    assert "grew past the cap of 10 bytes" in rows["grown.png"].read_error
    assert rows["gone.png"].content is None
    assert "FileNotFoundError" in rows["gone.png"].read_error
    # huge.png does not exist: had it been opened, it would carry a read error.
    assert (rows["huge.png"].content, rows["huge.png"].read_error) == (None, None)
    assert (rows["empty.png"].content, rows["empty.png"].read_error) == (b"", None)

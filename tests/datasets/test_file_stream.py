"""The file log: each delivered file logged once, by metadata only, settled once routed."""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from keras_lakehouse.datasets import FileStreamDataset

# Spark's binaryFile source refuses to read the bytes of a file longer than this: with it at 1,
# any query that reads the content of a non-empty file fails.
MAX_LENGTH_CONF = "spark.sql.sources.binaryFile.maxLength"


@contextmanager
def no_file_content_read(spark):
    spark.conf.set(MAX_LENGTH_CONF, "1")
    try:
        yield
    finally:
        spark.conf.unset(MAX_LENGTH_CONF)


def deliver(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)


def names(frame) -> dict[str, object]:
    return {Path(row.path).name: row for row in frame.collect()}


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, FileStreamDataset]:
    root = tmp_path / "raw"
    deliver(root, {"circle/a.png": b"aaaa", "square/b.png": b"bb", "square/empty.png": b""})
    deliver(root, {"_hidden/c.png": b"c", "circle/.partial.png": b"p"})
    return root, FileStreamDataset(filepath=str(root), checkpoint=str(tmp_path / "log"))


def test_each_file_is_logged_once_from_metadata_alone(spark, raw) -> None:
    root, dataset = raw
    with no_file_content_read(spark):
        first = names(dataset.load())
        again = names(dataset.load())
    # The zero-byte file the file source skips is logged too; hidden names are not, like Spark.
    assert set(first) == set(again) == {"a.png", "b.png", "empty.png"}
    assert (first["a.png"].length, first["empty.png"].length) == (4, 0)
    assert all(row.settled_at is None for row in first.values())
    assert first["a.png"].path.startswith("file:/")
    assert first["a.png"].path.removesuffix("circle/a.png") == first["empty.png"].path.removesuffix(
        "square/empty.png"
    )
    # The content really is refused at this setting: the guard above proves something.
    with no_file_content_read(spark), pytest.raises(Exception, match=r"(?i)length|exceed"):
        spark.read.format("binaryFile").load(str(root / "circle")).select("content").collect()


def test_new_files_join_the_log_and_settled_files_stay_settled(spark, raw) -> None:
    root, dataset = raw
    log = dataset.load()
    dataset.save(log.filter(log.length > 0).select("path"))
    deliver(root, {"circle/new one [1] %20 é.png": b"new"})
    after = names(dataset.load())
    assert {name for name, row in after.items() if row.settled_at is None} == {
        "empty.png",
        "new one [1] %20 é.png",
    }
    settled_at = after["a.png"].settled_at
    dataset.save(log.select("path"))  # settling again changes no stamp
    assert names(dataset.load())["a.png"].settled_at == settled_at


def test_settling_a_file_the_log_lacks_is_refused(spark, raw) -> None:
    _, dataset = raw
    dataset.load()
    with pytest.raises(DatasetError, match="cannot settle files the log does not hold"):
        dataset.save(spark.createDataFrame([("file:/nowhere/x.png",)], "path string"))
    with pytest.raises(DatasetError, match="expected a 'path' column"):
        dataset.save(spark.createDataFrame([("x",)], "name string"))


def test_a_file_rewritten_under_a_known_path_is_named_not_read_again(spark, raw, caplog) -> None:
    root, dataset = raw
    dataset.load()
    deliver(root, {"circle/a.png": b"rewritten with other bytes"})
    with caplog.at_level(logging.WARNING, logger="keras_lakehouse.datasets.binary_files"):
        rows = names(dataset.load())
    assert rows["a.png"].length == 4  # the first delivery stands
    assert "1 file(s) were rewritten under a path already ingested" in caplog.text
    assert "a.png" in caplog.text


def test_a_file_delivered_with_an_old_modification_time_is_logged(spark, raw, caplog) -> None:
    """A copy that keeps modification times (tar, rsync -a) must not fall outside Spark's
    maxFileAge (7 days by default): the stream delivers it, and the listing is the safety net."""
    root, dataset = raw
    dataset.load()
    deliver(root, {"circle/old.png": b"old bytes"})
    month_ago = time.time() - 30 * 86400
    os.utime(root / "circle/old.png", (month_ago, month_ago))
    with caplog.at_level(logging.WARNING, logger="keras_lakehouse.datasets.binary_files"):
        rows = names(dataset.load())
    assert rows["old.png"].settled_at is None
    assert "not delivered by the stream" not in caplog.text  # the stream itself delivered it


def test_start_over_forgets_every_file(spark, raw) -> None:
    _, dataset = raw
    log = dataset.load()
    dataset.save(log.select("path"))
    dataset.start_over()
    assert all(row.settled_at is None for row in names(dataset.load()).values())


def test_configuration_mistakes_fail_when_the_catalog_is_built(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="source must be one of"):
        FileStreamDataset(filepath=str(tmp_path), checkpoint=str(tmp_path / "x"), source="s3")
    with pytest.raises(DatasetError, match="lies inside the raw folder"):
        FileStreamDataset(filepath=str(tmp_path), checkpoint=str(tmp_path / "raw_log"))
    with pytest.raises(DatasetError, match="does not exist"):
        FileStreamDataset(filepath=str(tmp_path / "none"), checkpoint=str(tmp_path.parent)).load()


def test_the_session_stays_the_active_one_after_the_stream(spark, raw) -> None:
    """The stream's batches run in a clone of the session; afterwards the nodes (and Great
    Expectations' temporary views) must find the run's own session active again."""
    from pyspark.sql import SparkSession

    _, dataset = raw
    dataset.load()
    active = SparkSession.getActiveSession()
    assert active._jsparkSession.equals(spark._jsparkSession)
    active.range(2).createOrReplaceTempView("after_the_stream")
    assert spark.sql("SELECT COUNT(*) AS n FROM after_the_stream").first().n == 2

"""DeltaTableDataset: overwrite, idempotent MERGE, atomic commits, configuration errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kedro.io.core import DatasetError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812
from pyspark.testing import assertDataFrameEqual

from keras_lakehouse.datasets import DeltaTableDataset

ROWS = [("a", 1), ("b", 2)]


def frame(spark: SparkSession, rows: list[tuple[str, int]]):
    return spark.createDataFrame(rows, "key string, value int")


def test_merge_twice_gives_the_same_table(spark: SparkSession, tmp_path: Path) -> None:
    dataset = DeltaTableDataset(
        filepath=str(tmp_path / "t"), write_mode="merge", merge_keys=["key"]
    )
    dataset.save(frame(spark, ROWS))
    first = dataset.load().collect()
    dataset.save(frame(spark, ROWS))
    assertDataFrameEqual(dataset.load(), first)
    assert dataset.version_number() == 1  # a second commit, no new rows


def test_a_table_not_yet_written_reads_as_empty_where_declared(
    spark: SparkSession, tmp_path: Path
) -> None:
    known = DeltaTableDataset(filepath=str(tmp_path / "t"), empty_schema="key string, value int")
    assert (known.load().columns, known.load().count()) == (["key", "value"], 0)
    with pytest.raises(Exception, match=r"(?i)not a delta table|path does not exist"):
        DeltaTableDataset(filepath=str(tmp_path / "t")).load()
    DeltaTableDataset(filepath=str(tmp_path / "t")).save(frame(spark, ROWS))
    assert known.load().count() == 2  # once written, the table itself


def test_an_empty_merge_commits_nothing_and_a_full_refresh_overwrites(
    spark: SparkSession, tmp_path: Path
) -> None:
    dataset = DeltaTableDataset(
        filepath=str(tmp_path / "t"), write_mode="merge", merge_keys=["key"]
    )
    dataset.save(frame(spark, ROWS))
    dataset.save(frame(spark, []))
    assert dataset.version_number() == 0  # no commit for no rows
    assert dataset.replace_on_save() is True
    dataset.save(frame(spark, [("c", 3)]))
    assert [row.key for row in dataset.load().collect()] == ["c"]
    assert dataset.at_version(0).load().count() == 2  # the past stays in the history
    assert dataset.replace_on_save() is False  # already overwriting


def test_merge_updates_or_ignores_matched_rows(spark: SparkSession, tmp_path: Path) -> None:
    update = DeltaTableDataset(filepath=str(tmp_path / "u"), write_mode="merge", merge_keys=["key"])
    ignore = DeltaTableDataset(
        filepath=str(tmp_path / "i"), write_mode="merge", merge_keys=["key"], when_matched="ignore"
    )
    for dataset in (update, ignore):
        dataset.save(frame(spark, ROWS))
        dataset.save(frame(spark, [("b", 20), ("c", 3)]))
    assertDataFrameEqual(update.load(), frame(spark, [("a", 1), ("b", 20), ("c", 3)]))
    assertDataFrameEqual(ignore.load(), frame(spark, [("a", 1), ("b", 2), ("c", 3)]))


def test_overwrite_replaces_and_pinned_version_reads_the_past(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "o")
    DeltaTableDataset(filepath=path).save(frame(spark, ROWS))
    DeltaTableDataset(filepath=path).save(frame(spark, [("z", 9)]))
    assertDataFrameEqual(DeltaTableDataset(filepath=path).load(), frame(spark, [("z", 9)]))
    assertDataFrameEqual(DeltaTableDataset(filepath=path, version=0).load(), frame(spark, ROWS))
    with pytest.raises(DatasetError, match="read-only"):
        DeltaTableDataset(filepath=path, version=0).save(frame(spark, ROWS))


def test_interrupted_write_leaves_the_previous_version_readable(
    spark: SparkSession, tmp_path: Path
) -> None:
    dataset = DeltaTableDataset(filepath=str(tmp_path / "atomic"))
    dataset.save(frame(spark, ROWS))

    @F.udf(T.IntegerType())
    def explode_midway(value: int) -> int:
        if value >= 50:
            raise RuntimeError("disk full")
        return value

    # 4 partitions: some tasks write their files before one fails.
    doomed = (
        spark.range(100)
        .repartition(4)
        .select(F.col("id").cast("string").alias("key"), explode_midway("id").alias("value"))
    )
    with pytest.raises(DatasetError):
        dataset.save(doomed)
    assert dataset.version_number() == 0
    assertDataFrameEqual(dataset.load(), frame(spark, ROWS))


def test_saving_without_the_merge_key_names_it(spark: SparkSession, tmp_path: Path) -> None:
    dataset = DeltaTableDataset(filepath=str(tmp_path / "k"), write_mode="merge", merge_keys=["id"])
    with pytest.raises(DatasetError, match=r"merge_keys \['id'\] are not columns"):
        dataset.save(frame(spark, ROWS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of 'filepath' or 'table'"),
        ({"filepath": "a", "table": "b"}, "exactly one of 'filepath' or 'table'"),
        ({"filepath": "a", "write_mode": "upsert"}, "write_mode must be one of"),
        ({"filepath": "a", "write_mode": "merge"}, "needs 'merge_keys'"),
        ({"filepath": "a", "when_matched": "delete"}, "when_matched must be one of"),
    ],
)
def test_bad_configuration_fails_when_the_catalog_is_built(kwargs, message) -> None:
    with pytest.raises(DatasetError, match=message):
        DeltaTableDataset(**kwargs)


def test_metastore_table_by_name(spark: SparkSession) -> None:
    dataset = DeltaTableDataset(
        table="default.dataset_by_name", write_mode="merge", merge_keys=["key"]
    )
    dataset.save(frame(spark, ROWS))
    dataset.save(frame(spark, [("c", 3)]))
    assert sorted(row.key for row in dataset.load().collect()) == ["a", "b", "c"]
    spark.sql("DROP TABLE default.dataset_by_name")


def test_compression_setting_is_restored_after_the_write(
    spark: SparkSession, tmp_path: Path
) -> None:
    key = "spark.sql.parquet.compression.codec"
    before = spark.conf.get(key)
    DeltaTableDataset(filepath=str(tmp_path / "c"), compression="uncompressed").save(
        frame(spark, ROWS)
    )
    written = pq.ParquetFile(next((tmp_path / "c").glob("*.parquet")))
    assert written.metadata.row_group(0).column(0).compression == "UNCOMPRESSED"
    assert spark.conf.get(key) == before


def test_data_without_a_delta_log_is_never_overwritten(spark: SparkSession, tmp_path: Path) -> None:
    """A table folder that lost its _delta_log (or holds other files) is an error naming the
    path; before, the MERGE fell back to an overwrite with overwriteSchema."""
    import shutil

    path = tmp_path / "bronze"
    dataset = DeltaTableDataset(filepath=str(path), write_mode="merge", merge_keys=["key"])
    dataset.save(frame(spark, ROWS))
    shutil.rmtree(path / "_delta_log")
    files = sorted(p.name for p in path.iterdir())
    with pytest.raises(DatasetError, match=r"bronze holds files but no Delta log"):
        dataset.save(frame(spark, [("c", 3)]))
    assert sorted(p.name for p in path.iterdir()) == files


def test_merge_creates_a_missing_table_and_a_lost_race_merges(
    spark: SparkSession, tmp_path: Path, monkeypatch
) -> None:
    """First run: the table is created. If another run creates it between the existence check
    and the write (the first-run race), the write becomes a MERGE: nothing is duplicated."""
    path = str(tmp_path / "race")
    dataset = DeltaTableDataset(filepath=path, write_mode="merge", merge_keys=["key"])
    other = DeltaTableDataset(filepath=path, write_mode="merge", merge_keys=["key"])
    other.save(frame(spark, [("a", 1), ("z", 9)]))  # the other run won
    calls: list[bool] = []
    real_exists = DeltaTableDataset._exists

    def exists_after_our_check(self) -> bool:
        calls.append(True)
        return len(calls) > 1 and real_exists(self)  # we looked before the other run committed

    monkeypatch.setattr(DeltaTableDataset, "_exists", exists_after_our_check)
    dataset.save(frame(spark, ROWS))
    assert len(calls) == 2  # the write found the table, looked again, and merged
    assert sorted(row.key for row in dataset.load().collect()) == ["a", "b", "z"]


def test_validated_by_reads_the_version_its_verdict_passed(spark: SparkSession, tmp_path) -> None:
    """Bronze behind a verdict: exactly the validated version (a later commit does not leak in);
    a failed, missing or version-less verdict is refused."""
    import json

    from keras_lakehouse.datasets import delta_version_of

    path, verdict = str(tmp_path / "bronze"), tmp_path / "gate.json"
    table = DeltaTableDataset(filepath=path, write_mode="merge", merge_keys=["key"])
    validated = DeltaTableDataset(filepath=path, validated_by=str(verdict))
    table.save(frame(spark, ROWS))  # version 0
    with pytest.raises(DatasetError, match="No data-quality verdict"):
        validated.load()
    verdict.write_text(json.dumps({"passed": True, "delta_version": 0}))
    table.save(frame(spark, [("c", 3)]))  # version 1: ingested after validation
    loaded = validated.load()
    assert sorted(row.key for row in loaded.collect()) == ["a", "b"]
    assert delta_version_of(loaded) == 0
    assert delta_version_of(table.load()) == 1
    verdict.write_text(json.dumps({"passed": False, "delta_version": 1, "failures": ["x"]}))
    with pytest.raises(DatasetError, match=r"gate failed for .*bronze at version 1: \['x'\]"):
        validated.load()
    verdict.write_text(json.dumps({"passed": True}))
    with pytest.raises(DatasetError, match="names no Delta version"):
        validated.load()
    verdict.write_text('{"passed": tr')  # a run killed while writing it
    with pytest.raises(DatasetError, match="unreadable"):
        validated.load()
    with pytest.raises(DatasetError, match="read-only"):
        validated.save(frame(spark, ROWS))

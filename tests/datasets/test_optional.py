"""OptionalDataset: the wrapped dataset's data once it exists, the default before; read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io.core import AbstractDataset, DatasetError
from pyspark.sql import SparkSession

from keras_lakehouse.datasets import DeltaTableDataset
from keras_lakehouse.datasets.optional import OptionalDataset


def test_missing_delta_table_loads_as_none_then_as_the_table(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "silver")
    known = OptionalDataset(filepath=path, dataset="keras_lakehouse.datasets.DeltaTableDataset")
    assert known.load() is None
    DeltaTableDataset(filepath=path).save(spark.createDataFrame([("a",)], "key string"))
    assert [row["key"] for row in known.load().collect()] == ["a"]
    assert known._describe()["filepath"] == path
    known.start_over()  # a full refresh: the table is ignored, as before the first run
    assert known.load() is None


def test_versioned_json_loads_the_default_then_the_latest_version(tmp_path: Path) -> None:
    path = str(tmp_path / "v.json")
    inner = {"type": "json.JSONDataset", "versioned": True}
    assert OptionalDataset(filepath=path, dataset=inner, default=[]).load() == []
    AbstractDataset.from_config("v", {**inner, "filepath": path}).save(["", "[UNK]", "goal"])
    assert OptionalDataset(filepath=path, dataset=inner).load() == ["", "[UNK]", "goal"]


def test_is_read_only_and_needs_a_type_and_one_filepath(tmp_path: Path) -> None:
    path = str(tmp_path / "x.json")
    with pytest.raises(DatasetError, match="read-only"):
        OptionalDataset(filepath=path, dataset="json.JSONDataset").save(["a"])
    with pytest.raises(DatasetError, match=r"with a 'type'.*Received: dataset=\{'versioned'"):
        OptionalDataset(filepath=path, dataset={"versioned": True})
    with pytest.raises(DatasetError, match="given once, at the top"):
        OptionalDataset(filepath=path, dataset={"type": "json.JSONDataset", "filepath": path})


def test_an_unreadable_report_loads_as_the_default_only_when_the_entry_says_so(
    tmp_path: Path, caplog
) -> None:
    """A run killed while writing a JSON report leaves it half-written: a report that is
    re-made from the data (``unreadable_as_default``) reads as not written yet, with a
    warning; any other entry still fails, naming the file."""
    path = tmp_path / "images_bronze.json"
    path.write_text('{"table": "images_bronze", "checks": [')
    with pytest.raises(DatasetError, match=r"images_bronze\.json"):
        OptionalDataset(filepath=str(path), dataset="json.JSONDataset").load()
    lenient = OptionalDataset(
        filepath=str(path), dataset="json.JSONDataset", unreadable_as_default=True
    )
    with caplog.at_level("WARNING", logger="keras_lakehouse.datasets.optional"):
        assert lenient.load() is None
    assert "images_bronze.json is unreadable" in caplog.text

"""Raw files as rows: zero-byte files are spelled like every other file (one key per file)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from keras_lakehouse.datasets import BinaryFilesDataset
from keras_lakehouse.datasets.binary_files import qualified_path


def test_zero_byte_files_are_spelled_like_spark_spells_the_others(spark, tmp_path) -> None:
    folder = tmp_path / "raw" / "circle"
    folder.mkdir(parents=True)
    (folder / "full.png").write_bytes(b"\x89PNG not really")
    (folder / "empty.png").write_bytes(b"")
    rows = {
        PurePosixPath(row.path).name: row
        for row in BinaryFilesDataset(filepath=str(tmp_path / "raw")).load().collect()
    }
    assert set(rows) == {"full.png", "empty.png"}
    assert (rows["empty.png"].length, rows["full.png"].length) == (0, 15)
    full, empty = rows["full.png"].path, rows["empty.png"].path
    assert empty.removesuffix("empty.png") == full.removesuffix("full.png")
    assert full.startswith("file:/")


def test_without_a_jvm_volume_paths_take_databricks_spelling() -> None:
    class ConnectSession:  # Spark Connect: no JVM behind the session
        pass

    assert qualified_path(ConnectSession(), "/Volumes/main/kl/raw/01_raw") == (
        "dbfs:/Volumes/main/kl/raw/01_raw"
    )
    assert qualified_path(ConnectSession(), str(Path("/tmp/raw"))) == "file:/tmp/raw"

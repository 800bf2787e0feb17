"""One measured process of the scale benchmark (``scale_bench.py`` starts it; not run by hand).

``run PROJECT REPORT``: the ingestion, data_quality and preprocessing pipelines (image namespace)
on a project copy, each stage one ``KedroSession`` run in this process (one Spark session, built
by the project's hooks before the first stage). ``floor RAW PROJECT REPORT``: Spark's bare
``binaryFile`` scan of the raw images computing only ``sha2(content, 256)``, on a session built
from the project's ``spark.yml``. Both write a JSON report: wall-clock times (``time.time()``,
so the parent can count from the moment it started this process), the seconds of each step and,
after the timed part, counts that check the run did what it should.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STAGES = ("ingestion", "data_quality", "preprocessing")
NAMESPACES = ("image",)  # the text branch feeds no image table and is not measured
TABLES = {
    "bronze": "data/02_intermediate/images_bronze",
    "quarantine": "data/02_intermediate/images_quarantine",
    "silver": "data/05_model_input/images_silver",
    "file_log": "data/02_intermediate/_file_logs/raw_images/files",
}
COUNTS_FILE = "data/08_reporting/images_ingestion_counts.json"


def run(project: Path) -> dict[str, Any]:
    """The three stages on ``project``; times, then the tables' row counts."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    imported = time.time()
    with contextlib.chdir(project):
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.load_context()  # the hooks check the parameters and build the Spark session
        spark_ready = time.time()
        stages: dict[str, float] = {}
        for stage in STAGES:
            started = time.perf_counter()
            with KedroSession.create(project_path=project) as session:
                session.run(pipeline_names=[stage], namespaces=list(NAMESPACES))
            stages[stage] = time.perf_counter() - started
        finished = time.time()
        counts = json.loads(Path(COUNTS_FILE).read_text())
        rows = table_rows(project)
    return {
        "imported_at": imported,
        "spark_ready_at": spark_ready,
        "finished_at": finished,
        "stages": stages,
        "ingestion_counts": {key: counts[key] for key in ("raw", "bronze", "quarantine")},
        "rows": rows,
    }


def table_rows(project: Path) -> dict[str, int]:
    """Rows of bronze, quarantine, silver and the file log; unsettled files of the log."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812

    spark = SparkSession.getActiveSession()
    frames = {name: spark.read.format("delta").load(str(project / p)) for name, p in TABLES.items()}
    rows = {name: frame.count() for name, frame in frames.items()}
    rows["unsettled"] = frames["file_log"].filter(F.col("settled_at").isNull()).count()
    return rows


def floor(raw: Path, project: Path) -> dict[str, Any]:
    """Spark's bare binaryFile scan of ``raw`` computing only SHA-256 of each file's bytes."""
    import yaml
    from pyspark.sql import functions as F  # noqa: N812

    from keras_lakehouse.platform.spark import get_or_create_spark

    imported = time.time()
    config = yaml.safe_load((project / "conf" / "base" / "spark.yml").read_text())
    config["spark.sql.warehouse.dir"] = str(project / "data" / "spark-warehouse")
    spark = get_or_create_spark(config, app_name="scale-bench-floor")
    spark_ready = time.time()
    started = time.perf_counter()
    result = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(str(raw))
        .select(F.sha2("content", 256).alias("sha256"))
        .agg(F.count("sha256").alias("files"), F.max("sha256").alias("last"))  # max: every hash
        .first()
    )
    seconds = time.perf_counter() - started
    return {
        "imported_at": imported,
        "spark_ready_at": spark_ready,
        "finished_at": time.time(),
        "stages": {"scan": seconds},
        "files": int(result["files"]),
    }


def main(argv: list[str]) -> int:
    """``run PROJECT REPORT`` or ``floor RAW PROJECT REPORT``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    mode, *paths = argv
    if mode == "run":
        project, report = map(Path, paths)
        result = run(project.resolve())
    elif mode == "floor":
        raw, project, report = map(Path, paths)
        result = floor(raw.resolve(), project.resolve())
    else:
        raise SystemExit(f"Expected mode 'run' or 'floor'. Received: {mode!r}")
    report.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Conflicts and kills end in "nothing lost, nothing duplicated, a clear message".

Delta rejects a conflicting commit whole; the project retries the MERGE a bounded number of times
and then names the table. Killed runs leave the tables at their previous version and the next run
completes. Two evaluations promoting at once take turns under the registry lock: the better model
ends as champion and every tag equals its registration report.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.datasets import DeltaTableDataset
from keras_lakehouse.datasets import delta_merge as delta_table_module
from keras_lakehouse.serving.promotion_lock import lock_name
from keras_lakehouse.serving.registry import (
    DECISION_TAG,
    KEPT,
    PREVIOUS_TAG,
    PROMOTED,
    REASON_TAG,
)

# Each table and the columns that identify one of its rows (the catalog's merge_keys).
TABLE_KEYS = {
    "images_bronze": ["key"],
    "images_quarantine": ["path"],
    "texts_bronze": ["id"],
    "texts_quarantine": ["source", "line"],
}
# A hang guard, not a speed limit: one ingestion run on the small sample takes ~90 s on an idle
# 2-core machine; in the suite, beside two other workers' JVMs, one took over 300 s.
RUN_TIMEOUT_S = 900
CONFLICT_MESSAGE = "another run committed to the table concurrently"


# ---- one process: a MERGE overtaken by a concurrent commit ------------------------------------
def gated_keys(spark, keys: list[str], started: Path, go: Path):
    """A batch whose evaluation (inside the MERGE, after Delta read the table) signals ``started``
    and waits for ``go``: a commit made meanwhile is a real concurrent commit."""

    @F.udf("string")
    def gate(key: str) -> str:
        import pathlib
        import time

        pathlib.Path(str(started)).touch()
        deadline = time.monotonic() + 60
        while not pathlib.Path(str(go)).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return key

    frame = spark.createDataFrame([(key,) for key in keys], "key string").coalesce(1)
    return frame.select(gate("key").alias("key"))  # one task: the other core stays free


def bronze_dataset(path: Path) -> DeltaTableDataset:
    return DeltaTableDataset(
        filepath=str(path), write_mode="merge", merge_keys=["key"], when_matched="ignore"
    )


def test_a_merge_overtaken_by_a_concurrent_commit_is_retried(spark, tmp_path: Path) -> None:
    table = tmp_path / "bronze"
    bronze_dataset(table).save(spark.createDataFrame([("a",)], "key string"))
    started, go = tmp_path / "started", tmp_path / "go"
    errors: list[BaseException] = []

    def slow_save() -> None:
        try:
            bronze_dataset(table).save(gated_keys(spark, ["b", "c"], started, go))
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=slow_save)
    worker.start()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the gated MERGE never started"
    # Another writer commits a MERGE while the first one is between its read and its commit.
    bronze_dataset(table).save(spark.createDataFrame([("c",), ("d",)], "key string"))
    go.touch()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert errors == []
    keys = [row["key"] for row in spark.read.format("delta").load(str(table)).collect()]
    assert sorted(keys) == ["a", "b", "c", "d"]  # each key once, none lost


class ConcurrentAppendException(Exception):  # noqa: N818 - Delta's Python name for the conflict
    """Stands for ``delta.exceptions.ConcurrentAppendException`` (absent from delta-spark 4.0.0)."""


def test_a_merge_that_keeps_conflicting_fails_naming_the_table(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delta.tables import DeltaMergeBuilder

    table = tmp_path / "bronze"
    bronze_dataset(table).save(spark.createDataFrame([("a",)], "key string"))
    calls: list[int] = []

    def conflict(self) -> None:
        calls.append(1)
        raise ConcurrentAppendException("Files were added by a concurrent update.")

    monkeypatch.setattr(DeltaMergeBuilder, "execute", conflict)
    monkeypatch.setattr(delta_table_module, "MERGE_BACKOFF_SECONDS", 0.01)
    with pytest.raises(
        delta_table_module.ConcurrentCommitError, match=rf"bronze.*{CONFLICT_MESSAGE}"
    ):
        bronze_dataset(table).save(spark.createDataFrame([("b",)], "key string"))
    assert len(calls) == delta_table_module.MERGE_ATTEMPTS

    # Any other failure is not a conflict: raised at once, not retried.
    calls.clear()

    def broken(self) -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    monkeypatch.setattr(DeltaMergeBuilder, "execute", broken)
    with pytest.raises(Exception, match="not a conflict"):
        bronze_dataset(table).save(spark.createDataFrame([("b",)], "key string"))
    assert len(calls) == 1


# ---- whole runs in their own processes -------------------------------------------------------
def light_project(project_copy, sample_data) -> tuple[Path, object]:
    """A project copy with the small sample and a one-core Spark (each process has its own JVM):
    the project and the sample's summary."""
    project = project_copy()
    (project / "conf/local/spark.yml").write_text(
        "spark.master: local[1]\nspark.sql.shuffle.partitions: 1\nspark.driver.memory: 1g\n"
    )
    return project, sample_data(project / "data/01_raw", small=True)


def start_run(project: Path, pipelines: str, log_name: str) -> subprocess.Popen:
    """``kedro run --pipelines=...`` through the project's entry point, in its own process group
    (so that a kill reaches Spark's JVM and Python workers too)."""
    log = (project / f"{log_name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "keras_lakehouse", f"--pipelines={pipelines}"],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def finish(process: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT_S) -> int:
    """The run's exit code; a run still going after ``timeout`` is killed and the test fails with
    the end of its log (where it hung)."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{process.args} did not finish in {timeout} s:\n{log_tail(log)}")


def log_tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def repeated_keys(spark, project: Path) -> dict[str, int]:
    """The number of keys held by more than one row, per ingestion table."""
    return {
        name: spark.read.format("delta")
        .load(str(project / "data/02_intermediate" / name))
        .groupBy(*keys)
        .count()
        .filter("count > 1")
        .count()
        for name, keys in TABLE_KEYS.items()
    }


def assert_the_gates_passed_on_the_current_tables(spark, project: Path) -> None:
    """Each bronze table's gate verdict and quality report passed, for the table's current
    version (not one a killed run left behind)."""
    from delta.tables import DeltaTable

    folder = project / "data/08_reporting/data_quality"
    for table in ("images_bronze", "texts_bronze"):
        path = str(project / "data/02_intermediate" / table)
        version = DeltaTable.forPath(spark, path).history(1).first()["version"]
        verdict = json.loads((folder / f"{table}_gate.json").read_text())
        assert (verdict["passed"], verdict["failures"], verdict["delta_version"]) == (
            True,
            [],
            version,
        ), verdict
        report = json.loads((folder / f"{table}.json").read_text())
        assert (report["success"], report["delta_version"]) == (True, version), report
        assert {check["status"] for check in report["checks"]} == {"passed"}


def assert_the_sample_is_ingested_once(spark, project: Path, summary, spark_uri) -> None:
    """The tables hold what one normal run makes of the sample, each row once: every delivered
    file is logged and settled; every image is in bronze or (the sample's bad files) in
    quarantine, never both; every good text record is in bronze, the bad ones in quarantine."""
    folder = project / "data/02_intermediate"
    assert repeated_keys(spark, project) == dict.fromkeys(TABLE_KEYS, 0)
    delivered = {}
    for modality in ("images", "texts"):
        log = spark.read.format("delta").load(str(folder / f"_file_logs/raw_{modality}/files"))
        delivered[modality] = sorted(
            spark_uri(path)
            for path in (project / "data/01_raw" / modality).rglob("*")
            if path.is_file() and not path.name.startswith((".", "_"))
        )
        assert sorted(row.path for row in log.collect()) == delivered[modality]
        assert log.filter("settled_at IS NULL").count() == 0

    def column(table: str, name: str) -> list:
        frame = spark.read.format("delta").load(str(folder / table))
        return [row[0] for row in frame.select(name).collect()]

    bad_images = {spark_uri(project / "data/01_raw/images" / bad) for bad in summary.bad_images}
    assert sorted(column("images_quarantine", "path")) == sorted(bad_images)
    assert sorted(column("images_bronze", "path")) == sorted(set(delivered["images"]) - bad_images)
    bronze, quarantine = column("texts_bronze", "source"), column("texts_quarantine", "source")
    assert len(bronze) == sum(summary.texts_per_label.values()) + summary.jsonl_records
    assert len(quarantine) == len(summary.bad_text_ids)
    assert set(bronze) | set(quarantine) == set(delivered["texts"])


def leftovers(project: Path) -> list[str]:
    """Files a later run could take for real output: temporary or staging names outside the
    logs of Delta and of the file log's stream. Delta ignores hidden files and files its log does
    not list. Spark's stream checkpoint writes each file as a hidden ``.<name>.<uuid>.tmp`` and
    renames it; a run killed in between leaves it, and Spark reads only the visible names."""
    suspicious = []
    for path in (project / "data").rglob("*"):
        name = path.name
        in_stream_checkpoint = "_file_logs" in path.parts and "stream" in path.parts
        if "_delta_log" in path.parts or (in_stream_checkpoint and name.startswith(".")):
            continue
        if name.endswith((".tmp", ".partial")) or "staging" in name or name.startswith(".tmp"):
            suspicious.append(str(path.relative_to(project)))
    return suspicious


def test_leftovers_are_our_temporary_files_not_the_logs_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ours = ["08_reporting/report.json.tmp", "06_models/serving/.staging-v1", "01_raw/a.partial"]
    logs = [
        "02_intermediate/images_bronze/_delta_log/.00000.json.abc.tmp",
        "02_intermediate/_file_logs/raw_images/stream/.metadata.ffcc.tmp",  # killed mid-rename
        "02_intermediate/_file_logs/raw_images/stream/offsets/.0.ab12.tmp",
    ]
    for name in [*ours, *logs, "02_intermediate/images_bronze/part-0.parquet"]:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("x")
    assert sorted(leftovers(tmp_path)) == sorted(f"data/{name}" for name in ours)


@pytest.mark.slow
def test_two_ingestion_runs_at_once_lose_and_duplicate_nothing(
    spark, project_copy, sample_data, spark_uri
) -> None:
    """Two processes ingest the same deliveries into empty table paths (the first-run race): at
    least one succeeds, a loser says why in words, and the tables hold what one run makes of
    the sample. (A later run that finds nothing new reads no file's bytes: test_full_run.py;
    deliveries an earlier run accepted are duplicates: tests/pipelines/ingestion.)"""
    project, summary = light_project(project_copy, sample_data)
    first = start_run(project, "ingestion", "first")
    second = start_run(project, "ingestion", "second")
    outcomes = {
        name: finish(process, project / f"{name}.log")
        for name, process in (("first", first), ("second", second))
    }
    logs = {name: (project / f"{name}.log").read_text() for name in outcomes}
    assert 0 in outcomes.values(), f"both concurrent runs failed:\n{logs}"
    for name, rc in outcomes.items():
        if rc != 0:  # a loser must say why, in words, not only with a JVM stack
            assert CONFLICT_MESSAGE in logs[name], logs[name][-4000:]
    assert_the_sample_is_ingested_once(spark, project, summary, spark_uri)


def wait_for(log: Path, marker: str, process: subprocess.Popen, timeout: float) -> None:
    """Until the run's log names ``marker`` (a node starting), or the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and marker in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"{process.args} ended or timed out before logging {marker!r}:\n{log_tail(log)}")


# Where a run is killed (plus a random part of a second): while the file stream records new files,
# after the bronze MERGE and before the files are settled, and while the quality verdict is
# written.
KILL_POINTS = (
    "looking for new files",
    "settle_raw_images",
    "record_texts_bronze_verdict",
)


@pytest.mark.slow
def test_a_killed_ingestion_leaves_nothing_a_normal_run_cannot_finish(
    spark, project_copy, sample_data, run_kedro, spark_uri
) -> None:
    pipelines = ["ingestion", "data_quality"]
    project, summary = light_project(project_copy, sample_data)
    delays = random.Random(10)
    for number, marker in enumerate(KILL_POINTS):
        process = start_run(project, ",".join(pipelines), f"killed_{number}")
        try:
            wait_for(project / f"killed_{number}.log", marker, process, RUN_TIMEOUT_S)
            time.sleep(delays.uniform(0, 1.5))
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with pytest.MonkeyPatch.context() as patch:  # a normal run finishes the job
        patch.chdir(project)
        run_kedro(project, pipeline_names=pipelines)

    # What one uninterrupted run makes of the sample, and verdicts on the tables as they are.
    assert_the_sample_is_ingested_once(spark, project, summary, spark_uri)
    assert_the_gates_passed_on_the_current_tables(spark, project)
    assert leftovers(project) == []


# ---- two evaluations promoting at once -------------------------------------------------------
def test_two_evaluations_promoting_at_once_leave_the_better_champion_and_final_tags(
    log_tiny_model, race_two_evaluations
) -> None:
    from keras_lakehouse.serving.registry import register_and_promote

    client = mlflow.MlflowClient()
    name = "racing_model"
    first = log_tiny_model("concurrency-tests")
    register_and_promote(
        name=name,
        model_uri=first[1],
        run_id=first[0],
        metric="macro_f1",
        value=0.85,
        floor=0.8,
        min_delta=0.01,
        champion_metric=lambda version: 0.0,
    )
    logged = {0.90: log_tiny_model("concurrency-tests"), 0.95: log_tiny_model("concurrency-tests")}
    values = {first[0]: 0.85} | {run_id: value for value, (run_id, _) in logged.items()}
    # Both evaluations measure the same champion (v1) before either moves the alias.
    reports, errors = race_two_evaluations(name, logged, values)
    assert errors == []

    # The better model ends as champion, whichever evaluation moved the alias first.
    racers = {report["value"]: report for report in reports.values()}
    best, other = racers[0.95], racers[0.90]
    champion = str(client.get_model_version_by_alias(name, "champion").version)
    assert champion == best["version"]
    holders = [
        str(found.version)
        for found in client.search_model_versions(f"name='{name}'")
        if "champion" in client.get_model_version(name, found.version).aliases
    ]
    assert holders == [champion]
    # Every report is final: the version's tags and its training run's tags say the same.
    for report in racers.values():
        tags = client.get_model_version(name, report["version"]).tags
        run_tags = client.get_run(logged[report["value"]][0]).data.tags
        decided = (report["decision"], report["reason"])
        assert decided == (tags[DECISION_TAG], tags[REASON_TAG])
        assert decided == (run_tags[DECISION_TAG], run_tags[REASON_TAG])
    assert best["decision"] == PROMOTED
    if other["decision"] == PROMOTED:  # it went first; the better one then measured and beat it
        assert best["previous_champion"] == other["version"]
        assert client.get_model_version(name, champion).tags[PREVIOUS_TAG] == other["version"]
        assert f"beats champion v{other['version']} (0.9000)" in best["reason"]
    else:  # it measured v1, found the alias moved, measured the better one and kept it
        assert other["decision"] == KEPT
        assert f"'champion' stays on v{champion}" in other["reason"]
    assert client.search_registered_models(filter_string=f"name = '{lock_name(name)}'") == []

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
def light_project(project_copy, sample_data) -> Path:
    """A project copy with the sample data and a one-core Spark (each process has its own JVM)."""
    project = project_copy()
    (project / "conf/local/spark.yml").write_text(
        "spark.master: local[1]\nspark.sql.shuffle.partitions: 1\nspark.driver.memory: 1g\n"
    )
    sample_data(project / "data/01_raw", small=True)
    return project


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


def table_state(spark, project: Path) -> dict[str, tuple[int, list[tuple]]]:
    """Row count and sorted key list of each ingestion table (paths relative to ``project``)."""
    state = {}
    for name, keys in TABLE_KEYS.items():
        rows = (
            spark.read.format("delta")
            .load(str(project / "data/02_intermediate" / name))
            .select(*keys)
            .collect()
        )
        keys_found = [
            tuple(value.replace(str(project), "<project>") for value in map(str, row))
            for row in rows
        ]
        state[name] = (len(rows), sorted(keys_found))
    return state


def reports(project: Path) -> dict[str, object]:
    """The counts reports, the gate verdicts and the quality reports' outcomes."""
    folder = project / "data/08_reporting"
    found: dict[str, object] = {}
    for modality in ("images", "texts"):
        found[f"{modality}_counts"] = json.loads(
            (folder / f"{modality}_ingestion_counts.json").read_text()
        )
        quality = folder / "data_quality"
        if quality.is_dir():
            found[f"{modality}_gate"] = json.loads(
                (quality / f"{modality}_bronze_gate.json").read_text()
            )
            report = json.loads((quality / f"{modality}_bronze.json").read_text())
            found[f"{modality}_quality"] = (
                report["success"],
                report.get("delta_version"),
                sorted(check["status"] for check in report["checks"]),
            )
    return found


def assert_every_file_settled_once(spark, project: Path) -> None:
    """Every delivered file is logged, settled, and in bronze or quarantine (images: in exactly
    one of them; a text file's records may be in both)."""
    folder = project / "data/02_intermediate"
    for modality, column in (("images", "path"), ("texts", "source")):
        log = spark.read.format("delta").load(str(folder / f"_file_logs/raw_{modality}/files"))
        delivered = sorted(
            p.as_uri().replace("file:///", "file:/")
            for p in (project / "data/01_raw" / modality).rglob("*")
            if p.is_file() and not p.name.startswith((".", "_"))
        )
        assert sorted(row.path for row in log.collect()) == delivered
        assert log.filter("settled_at IS NULL").count() == 0
        tables = {
            name: {
                row[0]
                for row in spark.read.format("delta")
                .load(str(folder / f"{modality}_{name}"))
                .select(column)
                .collect()
            }
            for name in ("bronze", "quarantine")
        }
        assert tables["bronze"] | tables["quarantine"] == set(delivered)
        if modality == "images":
            assert not tables["bronze"] & tables["quarantine"]


def leftovers(project: Path) -> list[str]:
    """Files a later run could take for real output: temporary or staging names outside Delta's
    own log (Delta ignores hidden files and files its log does not list)."""
    suspicious = []
    for path in (project / "data").rglob("*"):
        if "_delta_log" in path.parts:
            continue
        name = path.name
        if name.endswith((".tmp", ".partial")) or "staging" in name or name.startswith(".tmp"):
            suspicious.append(str(path.relative_to(project)))
    return suspicious


@pytest.mark.slow
def test_two_ingestion_runs_at_once_lose_and_duplicate_nothing(
    spark, project_copy, sample_data, run_kedro
) -> None:
    project = light_project(project_copy, sample_data)  # empty table paths: the first-run race
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

    state = table_state(spark, project)
    for name, (count, keys) in state.items():
        assert count == len(set(keys)), f"{name} holds a key more than once"
    assert_every_file_settled_once(spark, project)

    # A re-run (in this process) finds nothing new and reads no file's bytes: every raw image is
    # overwritten with zeros of the same length (a read would quarantine it as not_an_image),
    # and Spark's binaryFile source may read no content at all (maxLength 1 would fail it).
    images = [p for p in (project / "data/01_raw/images").rglob("*") if p.is_file()]
    originals = {path: path.read_bytes() for path in images}
    for path, content in originals.items():
        path.write_bytes(bytes(len(content)))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        spark.conf.set("spark.sql.sources.binaryFile.maxLength", "1")
        try:
            run_kedro(project, pipeline_names=["ingestion"])
        finally:
            spark.conf.unset("spark.sql.sources.binaryFile.maxLength")
    assert table_state(spark, project) == state
    assert reports(project)["images_counts"]["raw"] == 0
    assert reports(project)["texts_counts"]["raw"] == 0
    for path, content in originals.items():
        path.write_bytes(content)

    # New deliveries: only they are checked; bytes already ingested are duplicates.
    some_image = next(path for path in images if path.parent.name == "circle" and originals[path])
    raw = project / "data/01_raw"
    (raw / "images/circle/again.png").write_bytes(originals[some_image])
    (raw / "texts/late.csv").write_text("id,text,label\nlate-1,a late goal,sports\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        run_kedro(project, pipeline_names=["ingestion"])
    counts = reports(project)
    assert counts["images_counts"] | {"quarantine_by_reason": None} == {
        "raw": 1,
        "bronze": 0,
        "quarantine": 1,
        "quarantine_by_reason": None,
    }
    assert counts["images_counts"]["quarantine_by_reason"] == {"duplicate_content": 1}
    assert (counts["texts_counts"]["raw"], counts["texts_counts"]["bronze"]) == (1, 1)
    assert_every_file_settled_once(spark, project)


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
    spark, project_copy, sample_data, run_kedro
) -> None:
    pipelines = ["ingestion", "data_quality"]
    reference = light_project(project_copy, sample_data)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(reference)
        run_kedro(reference, pipeline_names=pipelines)
    expected_tables, expected_reports = table_state(spark, reference), reports(reference)

    project = light_project(project_copy, sample_data)
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

    assert table_state(spark, project) == expected_tables
    assert_every_file_settled_once(spark, project)
    # The counts report what each run found new; the verdicts and quality reports must agree.
    found = {name: value for name, value in reports(project).items() if "counts" not in name}
    assert found == {k: v for k, v in expected_reports.items() if "counts" not in k}
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

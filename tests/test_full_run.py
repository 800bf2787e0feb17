"""The default `kedro run`, twice, on the sample data in a copy of the project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# The quality floors of the test sizes the suite trains at (conf/test/parameters.yml: the CNN's
# is 0 there, the LSTM's above chance).
FLOORS = {
    name: settings["floor"]
    for name, settings in yaml.safe_load((PROJECT_ROOT / "conf/test/parameters.yml").read_text())[
        "evaluation"
    ].items()
    if isinstance(settings, dict)
}
TABLES = ("images_bronze", "images_quarantine", "texts_bronze", "texts_quarantine")


def table_counts(spark: SparkSession, project: Path) -> dict[str, int]:
    return {
        name: spark.read.format("delta").load(str(project / "data/02_intermediate" / name)).count()
        for name in TABLES
    }


def quarantine_reasons(spark: SparkSession, project: Path, table: str) -> dict[str, int]:
    frame = spark.read.format("delta").load(str(project / "data/02_intermediate" / table))
    return {row["reason"]: row["count"] for row in frame.groupBy("reason").count().collect()}


def ingestion_counts(project: Path) -> dict[str, dict]:
    """The counts reports the last ingestion wrote, by modality."""
    reports = project / "data/08_reporting"
    return {
        modality: json.loads((reports / f"{modality}_ingestion_counts.json").read_text())
        for modality in ("images", "texts")
    }


class TwoRuns(NamedTuple):
    """The trained project and what its first run and a second ingestion left."""

    project: Path
    summary: object
    first: dict[str, int]  # table counts after the default run
    second: dict[str, int]  # after the second ingestion
    first_counts: dict[str, dict]  # the ingestion counts reports of the default run
    second_counts: dict[str, dict]  # of the second ingestion


@pytest.fixture(scope="module")
def two_runs(spark: SparkSession, trained_project, run_kedro) -> TwoRuns:
    project, summary = trained_project
    first = table_counts(spark, project)
    first_counts = ingestion_counts(project)
    # The second run finds nothing new and reads no file's bytes: every raw image is overwritten
    # with zeros of the same length meanwhile (a read would quarantine it as not_an_image), and
    # Spark's binaryFile source may read no content at all (maxLength 1 would fail it).
    images = [path for path in (project / "data/01_raw/images").rglob("*") if path.is_file()]
    originals = {path: path.read_bytes() for path in images}
    try:
        for path, content in originals.items():
            path.write_bytes(bytes(len(content)))
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(project)
            spark.conf.set("spark.sql.sources.binaryFile.maxLength", "1")
            run_kedro(project, pipeline_names=["ingestion"])
    finally:
        spark.conf.unset("spark.sql.sources.binaryFile.maxLength")
        for path, content in originals.items():
            path.write_bytes(content)
    second = table_counts(spark, project)
    second_counts = ingestion_counts(project)
    return TwoRuns(project, summary, first, second, first_counts, second_counts)


def test_every_raw_record_lands_in_exactly_one_table(spark, two_runs) -> None:
    project, summary, first = two_runs.project, two_runs.summary, two_runs.first
    images, texts = two_runs.first_counts["images"], two_runs.first_counts["texts"]
    raw_image_files = sum(
        1 for path in (project / "data/01_raw/images").rglob("*") if path.is_file()
    )
    assert images["raw"] == raw_image_files
    assert first["images_bronze"] + first["images_quarantine"] == raw_image_files
    assert first["images_bronze"] == sum(summary.images_per_label.values()) + 3  # + L/RGBA/CMYK
    expected_texts = sum(summary.texts_per_label.values()) + summary.jsonl_records
    assert first["texts_bronze"] == expected_texts
    assert texts["raw"] == expected_texts + len(summary.bad_text_ids)


def test_each_sample_bad_record_has_its_reason(spark, two_runs) -> None:
    project = two_runs.project
    assert quarantine_reasons(spark, project, "images_quarantine") == {
        "truncated": 1,
        "empty_file": 1,
        "not_an_image": 1,
        "too_many_pixels": 1,
        "unknown_label": 1,
    }
    assert quarantine_reasons(spark, project, "texts_quarantine") == {
        "not_utf8": 1,
        "empty_text": 1,
        "unknown_label": 1,
        "duplicate_id": 1,
        "malformed_row": 1,
    }


def test_second_run_reads_nothing_and_leaves_the_tables_unchanged(two_runs) -> None:
    assert two_runs.second == two_runs.first
    assert {modality: counts["raw"] for modality, counts in two_runs.second_counts.items()} == {
        "images": 0,
        "texts": 0,
    }


def test_quality_reports_are_written_and_pass(two_runs) -> None:
    project = two_runs.project
    for table in ("images_bronze", "texts_bronze"):
        report = json.loads((project / f"data/08_reporting/data_quality/{table}.json").read_text())
        assert report["success"] is True
        assert {check["status"] for check in report["checks"]} == {"passed"}
        page = (project / f"data/08_reporting/data_quality/{table}.html").read_text()
        assert f"Data quality: {table} — PASSED" in page


def test_silver_tables_and_fitted_artifacts(spark, two_runs) -> None:
    project, first = two_runs.project, two_runs.first
    silver = project / "data/05_model_input"
    images = spark.read.format("delta").load(str(silver / "images_silver"))
    texts = spark.read.format("delta").load(str(silver / "texts_silver"))
    assert images.count() == first["images_bronze"]
    assert texts.count() == first["texts_bronze"]
    assert {row["split"] for row in images.select("split").distinct().collect()} == {
        "train",
        "val",
        "test",
    }
    vocabulary = json.loads(next(silver.glob("vocabulary.json/*/vocabulary.json")).read_text())
    assert vocabulary[:2] == ["", "[UNK]"]
    label_map = json.loads(next(silver.glob("image_label_map.json/*/*.json")).read_text())
    assert label_map == {"circle": 0, "square": 1, "triangle": 2}


def test_both_models_train_to_the_accuracy_floor(two_runs) -> None:
    project = two_runs.project
    for name in ("cnn", "lstm"):
        metrics = json.loads(
            (project / f"data/08_reporting/training/{name}_metrics.json").read_text()
        )
        assert metrics["test_accuracy"] >= FLOORS[name], (name, metrics)
        assert len(metrics["history"]["val_loss"]) >= 1
        assert list(project.glob(f"data/06_models/{name}.keras/*/{name}.keras"))


def test_each_model_has_one_mlflow_run_with_params_metrics_lineage_and_model(two_runs) -> None:
    import mlflow

    runs = mlflow.search_runs(experiment_names=["keras_lakehouse"], output_format="list")
    project = two_runs.project
    by_model = {
        run.data.tags["model"]: run
        for run in runs
        if run.data.tags.get("input.table", "").startswith(str(project))
        and run.data.params.get("strategy") == "default"
    }
    assert set(by_model) == {"cnn", "lstm"}
    cnn = by_model["cnn"]
    assert cnn.info.status == "FINISHED"
    assert cnn.data.params["strategy"] == "default"
    assert cnn.data.params["augmentation.shear"] == "0.05"  # conf/test
    assert cnn.data.tags["input.delta_version"] == "0"
    assert int(cnn.data.tags["input.rows.train"]) > 0
    assert 0.0 <= cnn.data.metrics["test_accuracy"] <= 1.0
    history = mlflow.MlflowClient().get_metric_history(cnn.info.run_id, "val_loss")
    assert len(history) == int(cnn.data.metrics["epochs_run"])
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(cnn.info.run_id)}
    assert "label_map.json" in artifacts
    lstm_artifacts = {
        item.path for item in mlflow.MlflowClient().list_artifacts(by_model["lstm"].info.run_id)
    }
    assert "vocabulary.json" in lstm_artifacts
    model = mlflow.pyfunc.load_model(f"runs:/{cnn.info.run_id}/model")
    assert model.metadata.get_input_schema() is not None


def test_bad_data_stops_the_run_at_the_gate_after_writing_its_report(
    spark: SparkSession, project_copy, sample_data, run_kedro, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_copy()
    sample_data(project / "data/01_raw", seed=7)
    # A suite that the sample data cannot meet: a floor of 90% per class.
    suite_file = project / "conf/base/expectations/texts_bronze.yml"
    suite_file.write_text(suite_file.read_text().replace("min_fraction: 0.1", "min_fraction: 0.9"))
    # A PASSED verdict left by an earlier run must not survive a failing validation.
    verdict_file = project / "data/08_reporting/data_quality/texts_bronze_gate.json"
    verdict_file.parent.mkdir(parents=True, exist_ok=True)
    verdict_file.write_text(json.dumps({"table": "texts_bronze", "passed": True}))
    monkeypatch.chdir(project)
    with pytest.raises(ValueError, match=r"Data quality gate failed for texts_bronze at version 0"):
        run_kedro(project, namespaces=["text"], pipeline_names=["ingestion", "data_quality"])
    report = json.loads((project / "data/08_reporting/data_quality/texts_bronze.json").read_text())
    assert report["success"] is False
    verdict = json.loads(verdict_file.read_text())
    assert (verdict["passed"], verdict["delta_version"]) == (False, 0)
    assert any("class_balance" in failure for failure in verdict["failures"])
    # Preprocessing alone refuses to read bronze behind that verdict.
    with pytest.raises(Exception, match=r"gate failed for .*texts_bronze at version 0"):
        run_kedro(project, namespaces=["text"], pipeline_names=["preprocessing"])


def test_invalid_parameter_fails_at_start_up_before_spark(
    project_copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_copy()
    params_file = project / "conf/base/parameters_ingestion.yml"
    params_file.write_text(
        params_file.read_text().replace("max_text_chars: 5000", "max_text_chars: 0")
    )
    started: list[str] = []
    monkeypatch.setattr(
        "keras_lakehouse.hooks.get_or_create_spark", lambda *a, **k: started.append("spark")
    )
    monkeypatch.chdir(project)
    bootstrap_project(project)
    with (
        KedroSession.create(project_path=project) as session,
        pytest.raises(ValueError, match=r"ingestion\.texts\.max_text_chars.*Received: 0"),
    ):
        session.load_context()
    assert started == []

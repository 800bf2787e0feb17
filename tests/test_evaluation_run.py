"""On the project where the default pipeline ran: reports, registry, serving parity, inference,
and the single-item command."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

pytestmark = pytest.mark.slow

MODELS = {"cnn": "keras_lakehouse_cnn", "lstm": "keras_lakehouse_lstm"}
# The suite trains at the test sizes (conf/test/parameters.yml): the LSTM learns the topics, the
# CNN does not reliably learn the shapes from so few images (its floor there is 0).
TEXT_FLOOR = 0.6
PLOTS = {
    "cnn": {"confusion_matrix.png", "training_curves.png", "test_images.png"},
    "lstm": {"confusion_matrix.png", "training_curves.png", "confidently_wrong.md"},
}


def delta(spark: SparkSession, project: Path, relative: str):
    return spark.read.format("delta").load(str(project / "data" / relative))


def first_saved_model(project: Path, name: str) -> keras.Model:
    """The model the default run saved (later tests may save more versions)."""
    path = sorted(project.glob(f"data/06_models/{name}.keras/*/{name}.keras"))[0]
    return keras.saving.load_model(path, safe_mode=True)


def test_metrics_reports_plots_and_mlflow_runs(trained_project) -> None:
    project = trained_project[0]
    reporting = project / "data/08_reporting/evaluation"
    for model, name in MODELS.items():
        report = json.loads((reporting / f"{model}_metrics.json").read_text())
        assert report["macro_f1"] >= (TEXT_FLOOR if model == "lstm" else 0.0), report
        assert set(report["per_class"]) == set(report["labels"])
        assert sum(map(sum, report["confusion_matrix"])) == report["test_split"]["rows"]
        assert {path.name for path in (reporting / model).iterdir()} == PLOTS[model]
        for path in (reporting / model).iterdir():
            assert path.stat().st_size > (1000 if path.suffix == ".png" else 100), path
        registration = json.loads((reporting / f"{model}_registration.json").read_text())
        assert registration["registered_model"] == name
        run_id = registration_run(name, registration["version"])
        run = mlflow.MlflowClient().get_run(run_id)
        assert run.data.metrics["test_macro_f1"] == pytest.approx(report["macro_f1"])
        artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "evaluation")}
        assert "evaluation/confusion_matrix.png" in artifacts
        assert run.data.tags["champion_decision"] == registration["decision"]
        # Lineage the MLflow way, and the environment's SBOM beside the model.
        (data_input,) = run.inputs.dataset_inputs
        source = json.loads(data_input.dataset.source)
        # MLflow 3.0 leaves version 0 out of the source (a falsy check): 0 is the default.
        assert source.get("delta_table_version", 0) == int(run.data.tags["input.delta_version"])
        top = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
        assert "sbom.cdx.json" in top
        version = mlflow.MlflowClient().get_model_version(name, registration["version"])
        assert len(version.tags["content_sha256"]) == 64


def registration_run(name: str, version: str) -> str:
    return mlflow.MlflowClient().get_model_version(name, version).run_id


def test_both_models_are_registered_with_a_champion(trained_project) -> None:
    client = mlflow.MlflowClient()
    for name in MODELS.values():
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.tags["champion_decision"] == "promoted"


def test_registered_models_serve_like_the_trained_models(
    spark: SparkSession, trained_project
) -> None:
    project = trained_project[0]
    silver = delta(spark, project, "05_model_input/images_silver").filter(F.col("split") == "test")
    bronze = delta(spark, project, "02_intermediate/images_bronze")
    rows = (
        silver.select("key", "image", "image_size")
        .join(bronze.select("key", "content"), "key")
        .orderBy("key")
        .limit(24)
        .toPandas()
    )
    size = int(rows["image_size"][0])
    pixels = np.stack(
        [np.frombuffer(raw, np.uint8).reshape(size, size, 3) for raw in rows["image"]]
    )
    expected = first_saved_model(project, "cnn").predict(pixels, verbose=0)
    served = mlflow.pyfunc.load_model(f"models:/{MODELS['cnn']}@champion").predict(
        pd.DataFrame({"image": [bytes(raw) for raw in rows["content"]]})
    )
    np.testing.assert_allclose(served.filter(like="prob_").to_numpy(), expected, atol=1e-5)

    texts = (
        delta(spark, project, "05_model_input/texts_silver")
        .filter(F.col("split") == "test")
        .orderBy("id")
        .limit(24)
        .toPandas()
    )
    expected = first_saved_model(project, "lstm").predict(
        np.stack(texts["token_ids"].to_numpy()).astype(np.int32), verbose=0
    )
    served = mlflow.pyfunc.load_model(f"models:/{MODELS['lstm']}@champion").predict(
        pd.DataFrame({"text": texts["text"]})
    )
    np.testing.assert_allclose(served.filter(like="prob_").to_numpy(), expected, atol=1e-5)


@pytest.fixture(scope="module")
def inference_run(spark: SparkSession, trained_project, run_kedro):
    project = trained_project[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        run_kedro(project, pipeline_names=["inference"])
    return project


def test_inference_scores_new_files_and_quarantines_bad_ones(spark, inference_run) -> None:
    project = inference_run
    with (project / "data/01_raw/inference/expected.csv").open() as handle:
        expected = {(row["kind"], row["key"]): row["label"] for row in csv.DictReader(handle)}
    predictions = delta(spark, project, "07_model_output/predictions").toPandas()
    assert len(predictions) == len(expected)  # 24 images + 24 texts
    summary = json.loads((project / "data/08_reporting/inference_summary.json").read_text())
    assert set(summary["images"]) == set(summary["texts"])  # the same count names
    assert (summary["images"]["accepted"], summary["texts"]["accepted"]) == (24, 24)
    assert set(predictions["model_version"]) == {"1"}
    found = {
        ("image", row.source.rsplit("/", 1)[-1])
        if row.modality == "image"
        else ("text", row.key): (row.predicted_label)
        for row in predictions.itertuples()
    }
    assert set(found) == set(expected)
    texts = {item: label for item, label in expected.items() if item[0] == "text"}
    right = sum(found[item] == label for item, label in texts.items())
    assert right / len(texts) >= TEXT_FLOOR, (right, len(texts))
    images_quarantine = delta(spark, project, "07_model_output/inference_images_quarantine")
    assert [row["reason"] for row in images_quarantine.collect()] == ["truncated"]
    texts_quarantine = delta(spark, project, "07_model_output/inference_texts_quarantine")
    assert sorted((row["reason"], row["id"]) for row in texts_quarantine.collect()) == [
        ("empty_text", "new_empty"),
        ("malformed_row", None),  # a row with the wrong field count has no trusted id
    ]


def test_rescoring_the_same_input_replaces_rows(spark, inference_run) -> None:
    """The predictions entry of the project's catalog, saved again with the same rows (what a
    second inference run of the same files by the same model version writes): rows replaced,
    none added. (Scoring the same input twice gives the same rows: the inference node tests.)"""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = inference_run
    bootstrap_project(project)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        with KedroSession.create(project_path=project) as session:
            dataset = session.load_context().catalog.get("predictions")
            before = dataset.load().toPandas()
            dataset.save(dataset.load().withColumn("scored_at", F.current_timestamp()))
            after = dataset.load().toPandas()
    assert len(after) == len(before) > 0
    keys = ["modality", "key", "model_name", "model_version"]
    assert not after.duplicated(keys).any()
    assert after["scored_at"].max() > before["scored_at"].max()  # the rows were rewritten


def predict(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "keras_lakehouse.serving.predict", "--project", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_predict_command_scores_one_item_or_says_why_not(trained_project, capsys) -> None:
    from keras_lakehouse.serving.predict import main

    project = trained_project[0]
    images = project / "data/01_raw/inference/images"
    with (project / "data/01_raw/inference/expected.csv").open() as handle:
        image_label = next(row for row in csv.DictReader(handle) if row["kind"] == "image")
    # The command as users type it, in its own process.
    done = predict(project, "--all", str(images / image_label["key"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    label, probability, model = lines[0].split("\t")
    by_class = {name.strip(): float(value) for name, value in (x.split("\t") for x in lines[1:])}
    assert set(by_class) == {"circle", "square", "triangle"}  # --all: one line per class
    assert label == max(by_class, key=by_class.get)
    assert float(probability) == pytest.approx(by_class[label], abs=1e-3)
    assert 0.0 < float(probability) <= 1.0
    assert model.startswith("(keras_lakehouse_cnn v1, champion")

    # The rest in this process (same code path after argument parsing).
    assert (
        main(
            [
                "--project",
                str(project),
                "The striker scored a late goal and the fans cheered the team.",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.split("\t")[0] == "sports"
    assert main(["--project", str(project), str(images / "new_corrupt.png")]) == 2
    assert "new_corrupt.png: truncated" in capsys.readouterr().err
    assert main(["--project", str(project), str(images / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err


# ---- monitoring (inside the inference run) ------------------------------------------------
DRIFTED_IMAGE_FEATURES = {
    f"{kind}_{channel}" for kind in ("brightness", "contrast") for channel in "rgb"
}


def monitoring_rows(spark: SparkSession, project: Path, run_id: str) -> pd.DataFrame:
    drift = delta(spark, project, "07_model_output/monitoring_drift")
    return drift.filter(F.col("run_id") == run_id).toPandas()


def test_inference_monitors_the_batch_and_flags_no_drift_on_the_training_distribution(
    spark, inference_run
) -> None:
    project = inference_run
    folder = project / "data/08_reporting/monitoring"
    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["failed"] == [], verdict
    assert verdict["warned"] == [], verdict
    rows = monitoring_rows(spark, project, verdict["run_id"])
    drift = rows[rows["statistic"] == "js_distance"]
    # Every feature of both modalities was judged against the version's training profile.
    assert set(drift["status"]) == {"ok"}, drift[["metric", "value", "status"]]
    assert {"brightness_r", "format", "confidence", "predicted_label"} <= set(
        drift[drift["modality"] == "image"]["metric"]
    )
    assert {"oov_rate", "tokens", "letters"} <= set(drift[drift["modality"] == "text"]["metric"])
    quality = rows[rows["statistic"].isin(["accuracy", "macro_f1"])]
    assert set(quality["labelled_rows"]) == {24}  # expected.csv: 24 images, 24 texts
    profiles = delta(spark, project, "07_model_output/monitoring_profiles").toPandas()
    assert set(profiles["scope"]) == {"training", "inference"}
    inference = profiles[(profiles["scope"] == "inference") & (profiles["feature"] == "width")]
    assert inference["count"].sum() == 24  # the accepted images
    for name in ("image_drift.png", "text_drift.png", "quality.png"):
        assert (folder / name).stat().st_size > 10_000, name
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    artifacts = {
        a.path for a in mlflow.MlflowClient().list_artifacts(verdict["run_id"], "monitoring")
    }
    assert "monitoring/report.html" in artifacts


def test_a_shifted_batch_fails_the_run_after_the_report_names_the_drifted_features(
    spark, inference_run, run_kedro
) -> None:
    """Last in the module: it replaces the project's inference batch, and puts it back."""
    from keras_lakehouse.sample_data.generator import generate_inference

    project = inference_run
    raw = project / "data/01_raw"
    generate_inference(raw, shifted=True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(project)
            with pytest.raises(Exception, match="Monitoring failed") as failure:
                run_kedro(project, pipeline_names=["inference"])
    finally:
        generate_inference(raw)
    verdict = json.loads((project / "data/08_reporting/monitoring/verdict.json").read_text())
    rows = monitoring_rows(spark, project, verdict["run_id"])
    failed = rows[rows["status"] == "fail"]
    image = set(failed[failed["modality"] == "image"]["metric"])
    assert image >= DRIFTED_IMAGE_FEATURES, rows[["metric", "value", "status"]]
    assert "oov_rate" in set(failed[failed["modality"] == "text"]["metric"])
    # What did not change is not flagged: the images' size and format.
    unchanged = rows[rows["metric"].isin(["width", "height", "format"])]
    assert set(unchanged["status"]) == {"ok"}, unchanged
    assert "brightness_r" in str(failure.value)

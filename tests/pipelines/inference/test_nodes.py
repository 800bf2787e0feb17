"""Batch inference on a small folder: bad files quarantined, the rest scored, re-runs replace."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.sql import SparkSession

from keras_lakehouse.datasets import BinaryFilesDataset, DeltaTableDataset
from keras_lakehouse.params import (
    ImageIngestionParams,
    InferenceParams,
    ServingParams,
    TextIngestionParams,
)
from keras_lakehouse.pipelines.inference import nodes
from keras_lakehouse.serving.mlflow_model import Scorer, ServingSpec, log_serving_model
from keras_lakehouse.serving.registry import register_and_promote
from keras_lakehouse.training.models import build_cnn, compile_model

IMAGE_SETTINGS = ImageIngestionParams(
    allowed_labels=["red", "blue"],
    allowed_formats=["PNG", "JPEG"],
    max_bytes=100_000,
    max_pixels=1_000_000,
)
TEXT_SETTINGS = TextIngestionParams(
    allowed_labels=["red", "blue"], max_text_chars=200, max_bytes=100_000
)
MODEL_NAME = "inference_test_cnn"


def png(colour: tuple[int, int, int], side: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small CNN registered with the alias ``champion``; returns the serving parameters."""
    model = compile_model(
        build_cnn(image_size=8, num_classes=2, filters=(2,), dense_units=4, batch_norm=False),
        optimizer="adam",
        learning_rate=0.01,
    )
    spec = ServingSpec.from_label_map(
        "image", {"blue": 0, "red": 1}, image_size=8, max_pixels=10**6
    )
    mlflow.set_experiment("inference-tests")
    with mlflow.start_run():
        info = log_serving_model(model, spec, pd.DataFrame({"image": [png((255, 0, 0))]}))
    version = register_and_promote(  # the gate: records the digest, sets the alias
        name=MODEL_NAME,
        model_uri=info.model_uri,
        run_id=info.run_id,
        metric="macro_f1",
        value=1.0,
        floor=0.0,
        min_delta=0.0,
        champion_metric=lambda version: 0.0,
    )["version"]
    cache = tmp_path_factory.mktemp("serving_cache")
    return {
        "serving": ServingParams(alias="champion", model_cache_dir=str(cache)),
        "inference": InferenceParams(
            image_model=MODEL_NAME, text_model="unused", rows_per_scoring_task=1000
        ),
        "scorer": Scorer(model, spec),
        "version": str(version),
    }


def test_corrupt_image_is_quarantined_and_the_rest_scored_idempotently(
    spark: SparkSession, tmp_path: Path, champion: dict
) -> None:
    good = {f"img_{i}.png": png((40 * i, 0, 255 - 40 * i), 16 + i) for i in range(5)}
    whole = png((1, 2, 3))
    folder = tmp_path / "images"
    folder.mkdir()
    for name, content in {**good, "broken.png": whole[: len(whole) // 2]}.items():
        (folder / name).write_bytes(content)
    raw = BinaryFilesDataset(filepath=str(folder)).load()

    accepted, quarantine, counts = nodes.check_images_to_score(raw, IMAGE_SETTINGS)
    assert counts["raw"] == 6
    assert counts["quarantine_by_reason"] == {"truncated": 1}
    assert [row["path"].rsplit("/", 1)[-1] for row in quarantine.collect()] == ["broken.png"]

    table = DeltaTableDataset(
        filepath=str(tmp_path / "predictions"),
        write_mode="merge",
        merge_keys=["modality", "key", "model_name", "model_version"],
        when_matched="update",
    )
    for _ in range(2):  # the same input, the same model version, scored twice
        predictions = nodes.score_images(accepted, champion["serving"], champion["inference"])
        table.save(predictions)
    rows = table.load().toPandas().sort_values("source")
    assert len(rows) == 5
    assert set(rows["model_name"]) == {MODEL_NAME}
    assert set(rows["model_version"]) == {champion["version"]}
    assert set(rows["modality"]) == {"image"}
    assert rows["scored_at"].notna().all()

    # The Spark scores are the registered model's: compare with the in-memory model.
    names = [path.rsplit("/", 1)[-1] for path in rows["source"]]
    expected = champion["scorer"].predict(pd.DataFrame({"image": [good[n] for n in names]}))
    assert rows["predicted_label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(rows["probability"], expected["probability"], rtol=1e-5)
    for probabilities, best in zip(rows["probabilities"], rows["probability"], strict=True):
        assert set(dict(probabilities)) == {"blue", "red"}
        assert max(dict(probabilities).values()) == pytest.approx(best)


def test_a_batch_is_scored_in_one_task_per_rows_per_scoring_task(
    spark: SparkSession, tmp_path: Path, champion: dict
) -> None:
    """Each scoring task loads the model once (a Python worker's first load imports TensorFlow):
    a batch is scored in ceil(rows / rows_per_scoring_task) tasks, never more than it has
    partitions, with the same rows whatever the split."""
    folder = tmp_path / "images"
    folder.mkdir()
    for number in range(5):
        (folder / f"img_{number}.png").write_bytes(png((50 * number, 0, 0), 12 + number))
    accepted, _, _ = nodes.check_images_to_score(
        BinaryFilesDataset(filepath=str(folder)).load(), IMAGE_SETTINGS
    )
    accepted = accepted.repartition(4)

    def scored(rows_per_task: int):
        inference = champion["inference"].model_copy(
            update={"rows_per_scoring_task": rows_per_task}
        )
        return nodes.score_images(accepted, champion["serving"], inference)

    tasks = {rows_per_task: scored(rows_per_task) for rows_per_task in (1000, 2, 1)}
    assert {size: frame.rdd.getNumPartitions() for size, frame in tasks.items()} == {
        1000: 1,
        2: 3,
        1: 4,
    }
    keys = {size: sorted(row["key"] for row in frame.collect()) for size, frame in tasks.items()}
    assert len(keys[1000]) == 5
    assert keys[1000] == keys[2] == keys[1]


def test_unlabelled_texts_are_checked_without_a_label(spark: SparkSession, tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "new.csv").write_text('id,text\na1,"a text to score"\na2,\na3,"x",extra\n')
    raw = BinaryFilesDataset(filepath=str(folder)).load()
    accepted, quarantine, counts = nodes.check_texts_to_score(raw, TEXT_SETTINGS)
    assert [row["id"] for row in accepted.collect()] == ["a1"]
    assert (counts["raw"], counts["accepted"]) == (3, 1)
    assert counts["quarantine_by_reason"] == {"empty_text": 1, "malformed_row": 1}
    assert quarantine.count() == 2


def test_scoring_without_a_champion_says_what_to_run(spark: SparkSession, tmp_path: Path) -> None:
    frame = spark.createDataFrame([("k", "p", b"")], "key string, path string, content binary")
    with pytest.raises(LookupError, match=r"has the alias 'champion'.*Run the default pipeline"):
        nodes.score_images(
            frame,
            ServingParams(alias="champion", model_cache_dir=str(tmp_path)),
            InferenceParams(
                image_model="never_registered", text_model="x", rows_per_scoring_task=1000
            ),
        )


def test_a_version_deleted_after_the_alias_resolved_fails_before_scoring(
    spark: SparkSession, tmp_path: Path, champion: dict, monkeypatch
) -> None:
    """The alias resolves to a version that is gone by the time it is fetched: a clear error,
    and nothing is scored (so nothing can be written)."""
    resolved = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
    gone = type(resolved)(name=MODEL_NAME, version="999", creation_timestamp=0)
    monkeypatch.setattr(
        mlflow.MlflowClient, "get_model_version_by_alias", lambda self, name, alias: gone
    )
    frame = spark.createDataFrame([("k", "p", b"")], "key string, path string, content binary")
    serving = champion["serving"].model_copy(update={"model_cache_dir": str(tmp_path)})
    with pytest.raises(LookupError, match=r"v999 .*cannot be fetched"):
        nodes.score_images(frame, serving, champion["inference"])
    assert not list(tmp_path.rglob("MLmodel"))

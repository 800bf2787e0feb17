"""Preprocessing nodes: splits without leakage, decoded images, a train-only vocabulary."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.ingest import images as imaging
from keras_lakehouse.params import (
    SPLIT_NAMES,
    ImagePreprocessingParams,
    SplitParams,
    TextPreprocessingParams,
)
from keras_lakehouse.pipelines.preprocessing import nodes, splits
from keras_lakehouse.serving.serving_code import build_vectorizer

SEED = 42
PROPORTIONS = SplitParams(train=0.7, val=0.15, test=0.15)
TEXT_LABELS = ["sports", "cooking"]
IMAGE_SETTINGS = ImagePreprocessingParams(image_size=16, max_pixels=1_000_000)
TEXT_SETTINGS = TextPreprocessingParams(
    vocabulary_size=50, sequence_length=6, vocabulary_policy="refit"
)


def encoded(color: tuple[int, ...], mode: str, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def keyed(spark: SparkSession) -> DataFrame:
    labels = ["sports", "cooking"]
    rows = [(f"id{i}", f"key{i % 500}", labels[i % 2]) for i in range(1000)]
    return spark.createDataFrame(rows, "id string, text_sha256 string, label string")


def split_of(frame: DataFrame, key: str = "text_sha256", seed: int = SEED) -> dict[str, str]:
    column = splits.assign_split(key=key, seed=seed, proportions=PROPORTIONS)
    return {row["id"]: row["split"] for row in frame.select("id", column.alias("split")).collect()}


def test_split_is_deterministic_and_order_free(keyed: DataFrame) -> None:
    first = split_of(keyed)
    shuffled = keyed.orderBy(F.rand(seed=3)).repartition(3)
    assert split_of(shuffled) == first
    assert split_of(keyed, seed=7) != first


def test_same_content_never_sits_in_two_splits(keyed: DataFrame) -> None:
    splits = split_of(keyed)
    by_key: dict[str, set[str]] = {}
    for row in keyed.collect():
        by_key.setdefault(row["text_sha256"], set()).add(splits[row["id"]])
    assert all(len(found) == 1 for found in by_key.values())


def test_split_proportions_follow_the_parameters(keyed: DataFrame) -> None:
    values = list(split_of(keyed).values())
    shares = {name: values.count(name) / len(values) for name in SPLIT_NAMES}
    assert shares["train"] == pytest.approx(0.7, abs=0.06)
    assert shares["val"] == pytest.approx(0.15, abs=0.05)


def test_split_texts_indexes_labels_in_sorted_order(keyed: DataFrame) -> None:
    frame, labels = nodes.split_texts(keyed, SEED, PROPORTIONS, TEXT_LABELS)
    assert labels == {"cooking": 0, "sports": 1}
    indexed = {(row["label"], row["label_index"]) for row in frame.collect()}
    assert indexed == {("cooking", 0), ("sports", 1)}


def test_split_images_splits_by_content_key_and_indexes_labels(spark: SparkSession) -> None:
    rows = [(f"k{i}", ["square", "circle"][i % 2]) for i in range(200)]
    bronze = spark.createDataFrame(rows, "key string, label string")
    frame, labels = nodes.split_images(bronze, SEED, PROPORTIONS, ["square", "circle"])
    assert labels == {"circle": 0, "square": 1}
    expected = splits.assign_split(key="key", seed=SEED, proportions=PROPORTIONS)
    pairs = frame.select("split", expected.alias("expected"), "label", "label_index").collect()
    assert all(row["split"] == row["expected"] for row in pairs)
    assert {(row["label"], row["label_index"]) for row in pairs} == {("circle", 0), ("square", 1)}


def test_missing_class_in_a_split_names_the_class_and_counts(spark: SparkSession) -> None:
    rows = [(f"id{i}", f"k{i}", "sports") for i in range(60)] + [("x", "kx", "cooking")]
    frame = spark.createDataFrame(rows, "id string, text_sha256 string, label string")
    with pytest.raises(ValueError, match=r"Every class must appear in every split of texts_bronze"):
        nodes.split_texts(frame, SEED, PROPORTIONS, TEXT_LABELS)
    with pytest.raises(ValueError, match=r"cooking has 0 rows in (train|val|test) \(train="):
        nodes.split_texts(frame, SEED, PROPORTIONS, TEXT_LABELS)


def test_gate_that_did_not_pass_stops_preprocessing(keyed: DataFrame) -> None:
    assert nodes.pass_gated_table(keyed, {"passed": True}) is keyed
    with pytest.raises(ValueError, match="did not pass"):
        nodes.pass_gated_table(keyed, {"passed": False})


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGB", "PNG"), ("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG")]
)
def test_images_decode_once_to_rgb_at_the_chosen_size(
    spark: SparkSession, mode: str, fmt: str
) -> None:
    frame = spark.createDataFrame(
        [("k", "circle", 0, "train", encoded((250, 250, 250), mode, fmt))],
        "key string, label string, label_index int, split string, content binary",
    )
    row = nodes.decode_images(frame, None, IMAGE_SETTINGS).first()
    assert row["image_size"] == 16
    pixels = imaging.pixels_to_array(row["image"], 16)
    assert pixels.shape == (16, 16, 3)
    assert pixels.dtype == np.uint8
    assert abs(int(pixels.mean()) - 250) <= 3


def test_resize_to_224_works() -> None:
    pixels = imaging.pixels_to_array(
        imaging.resize_rgb(encoded((1, 2, 3), "RGB"), 224, 1_000_000), 224
    )
    assert pixels.shape == (224, 224, 3)


@pytest.fixture(scope="module")
def texts_split(spark: SparkSession) -> DataFrame:
    rows = [
        ("a", "The GOAL, the match!", "sports", 1, "train", "h1"),
        ("b", "goal goal keeper", "sports", 1, "train", "h2"),
        ("c", "Stir the soup", "cooking", 0, "train", "h3"),
        ("d", "unseenword goal", "sports", 1, "test", "h4"),
        ("e", "valonly soup", "cooking", 0, "val", "h5"),
    ]
    return spark.createDataFrame(
        rows,
        "id string, text string, label string, label_index int, split string, text_sha256 string",
    )


def test_vocabulary_is_fitted_on_train_only(texts_split: DataFrame) -> None:
    vocabulary = nodes.fit_vocabulary(texts_split, None, TEXT_SETTINGS)
    assert vocabulary[:4] == ["", "[UNK]", "goal", "the"]  # by count, then alphabetically
    assert "unseenword" not in vocabulary
    assert "valonly" not in vocabulary


def test_spark_vocabulary_matches_keras_adapt(texts_split: DataFrame) -> None:
    import keras

    train = [row["text"] for row in texts_split.filter("split = 'train'").collect()]
    layer = keras.layers.TextVectorization(max_tokens=50)
    layer.adapt(np.asarray(train, dtype=object))
    assert set(nodes.fit_vocabulary(texts_split, None, TEXT_SETTINGS)) == set(
        layer.get_vocabulary()
    )


def test_token_seen_only_outside_train_maps_to_oov(texts_split: DataFrame) -> None:
    vocabulary = nodes.fit_vocabulary(texts_split, None, TEXT_SETTINGS)
    silver = {
        row["id"]: row
        for row in nodes.vectorize_texts(texts_split, None, vocabulary, TEXT_SETTINGS).collect()
    }
    goal = vocabulary.index("goal")
    assert list(silver["d"]["token_ids"]) == [1, goal, 0, 0, 0, 0]
    assert silver["e"]["token_ids"][0] == 1
    assert len(silver["a"]["token_ids"]) == 6


def test_texts_are_vectorized_in_one_task_per_rows_per_vectorizing_task(
    texts_split: DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each task builds the Keras vectorizer (a fresh Python worker imports TensorFlow for it):
    a few texts are one task, more are ceil(rows / ROWS_PER_VECTORIZING_TASK), never more than
    the input has partitions, and the ids do not depend on the split."""
    vocabulary = nodes.fit_vocabulary(texts_split, None, TEXT_SETTINGS)
    spread = texts_split.repartition(4)
    rows = spread.count()

    def vectorized() -> tuple[int, dict[str, list[int]]]:
        frame = nodes.vectorize_texts(spread, None, vocabulary, TEXT_SETTINGS)
        ids = {row["id"]: list(row["token_ids"]) for row in frame.collect()}
        return frame.rdd.getNumPartitions(), ids

    few, ids = vectorized()
    monkeypatch.setattr(nodes, "ROWS_PER_VECTORIZING_TASK", 2)
    many, same_ids = vectorized()
    assert (few, many) == (1, min(4, -(-rows // 2)))
    assert len(ids) == rows
    assert same_ids == ids


def test_vectorizer_refuses_a_vocabulary_without_special_tokens() -> None:
    with pytest.raises(ValueError, match=r"Received: \['goal', 'the'\]"):
        build_vectorizer(["goal", "the"], 4)

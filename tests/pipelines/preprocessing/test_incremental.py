"""Silver grows by MERGE: a run decodes / vectorizes only the rows silver lacks or holds stale;
existing rows keep their split; the vocabulary follows ``vocabulary_policy``.

The nodes run against the project's own catalog entries (``conf/base/catalog.yml``) rooted in a
temporary folder, the way Kedro chains them: split → *_known → decode / vectorize → MERGE.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io.core import AbstractDataset
from PIL import Image
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.params import (
    ImagePreprocessingParams,
    SplitParams,
    TextPreprocessingParams,
)
from keras_lakehouse.params_validation import validate_parameters
from keras_lakehouse.pipelines.preprocessing import nodes, silver, splits
from keras_lakehouse.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CATALOG = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
SEED = 42
PROPORTIONS = SplitParams(train=0.7, val=0.15, test=0.15)
IMAGE_LABELS = ["square", "circle"]
TEXT_LABELS = ["sports", "cooking"]
IMAGES = ImagePreprocessingParams(image_size=8, max_pixels=1_000_000)
REFIT = TextPreprocessingParams(vocabulary_size=50, sequence_length=6, vocabulary_policy="refit")
KEEP = REFIT.model_copy(update={"vocabulary_policy": "keep"})


def dataset(name: str, root: Path) -> AbstractDataset:
    """The catalog entry ``name`` of conf/base, with ``data_root`` at ``root`` (a new instance:
    a versioned dataset resolves its latest version afresh)."""
    entry = json.loads(json.dumps(CATALOG[name]).replace("${globals:data_root}", str(root)))
    return AbstractDataset.from_config(name, entry)


class NodeLog(logging.Handler):
    """What the preprocessing nodes log, while attached."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    # The stage's package logger: the nodes and the modules beside them (silver, splits).
    LOGGER = nodes.__name__.rsplit(".", 1)[0]

    def __enter__(self) -> NodeLog:
        logging.getLogger(self.LOGGER).addHandler(self)
        logging.getLogger(self.LOGGER).setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)

    def computed(self) -> int | str:
        """How many rows the last decode / vectorize computed, by its own count: a number, or
        ``"all"`` when there was no silver table yet."""
        for message in reversed(self.messages):
            found = re.search(r"(?:decoding|vectorizing) (\d+|every) row", message)
            if found:
                return "all" if found.group(1) == "every" else int(found.group(1))
        raise AssertionError(f"No decode / vectorize count logged. Received: {self.messages}")


# ---- images ------------------------------------------------------------------------------------
def images_bronze(spark: SparkSession, count: int) -> DataFrame:
    rows = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (6, 4), (i % 256, (7 * i) % 256, 50)).save(buffer, format="PNG")
        rows.append((f"key{i:03d}", IMAGE_LABELS[i % 2], buffer.getvalue()))
    return spark.createDataFrame(rows, "key string, label string, content binary")


def images_silver(spark: SparkSession, root: Path) -> dict[str, tuple[Any, ...]]:
    frame = spark.read.format("delta").load(str(root / "05_model_input/images_silver"))
    columns = ("label", "label_index", "split", "image_size", "image")
    return {row["key"]: tuple(row[name] for name in columns) for row in frame.collect()}


@pytest.fixture(scope="module")
def image_runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three runs on one silver table: 100 images, the same again, then 20 more."""
    root = tmp_path_factory.mktemp("image_runs")
    runs: dict[str, Any] = {}
    for name, count in [("first", 100), ("again", 100), ("more", 120)]:
        split, label_map = nodes.split_images(
            images_bronze(spark, count), SEED, PROPORTIONS, IMAGE_LABELS
        )
        with NodeLog() as log:
            rows = nodes.decode_images(split, dataset("images_silver_known", root).load(), IMAGES)
        dataset("images_silver@spark", root).save(rows)
        runs[name] = {
            "decoded": log.computed(),
            "label_map": label_map,
            "silver": images_silver(spark, root),
            "version": dataset("images_silver@spark", root).version_number(),
        }
    runs["snapshot"] = dataset("images_silver@snapshot", root).load()
    return runs


def test_first_run_decodes_every_image(image_runs: dict[str, Any]) -> None:
    assert image_runs["first"]["decoded"] == "all"
    assert len(image_runs["first"]["silver"]) == 100


def test_second_run_without_new_bronze_rows_decodes_nothing_and_changes_nothing(
    image_runs: dict[str, Any],
) -> None:
    assert image_runs["again"]["decoded"] == 0
    assert image_runs["again"]["silver"] == image_runs["first"]["silver"]
    assert image_runs["again"]["version"] == image_runs["first"]["version"]  # no commit at all


def test_new_bronze_rows_are_the_only_ones_decoded(image_runs: dict[str, Any]) -> None:
    first, more = image_runs["first"]["silver"], image_runs["more"]["silver"]
    assert image_runs["more"]["decoded"] == 20
    assert set(more) - set(first) == {f"key{i:03d}" for i in range(100, 120)}
    assert {key: more[key] for key in first} == first  # same split, label index, pixels


def test_split_and_label_map_of_existing_rows_never_change(image_runs: dict[str, Any]) -> None:
    assert image_runs["first"]["label_map"] == image_runs["more"]["label_map"]
    assert image_runs["first"]["label_map"] == {"circle": 0, "square": 1}
    more = image_runs["more"]["silver"]
    for key, (label, index, split, _, _) in image_runs["first"]["silver"].items():
        assert more[key][:3] == (label, index, split)


def test_training_snapshot_reads_the_merged_table_whole(image_runs: dict[str, Any]) -> None:
    snapshot = image_runs["snapshot"]
    assert (snapshot.version, snapshot.num_rows) == (image_runs["more"]["version"], 120)
    assert sum(snapshot.split_counts.values()) == 120


def test_split_of_a_key_does_not_depend_on_the_other_rows(spark: SparkSession) -> None:
    column = splits.assign_split(key="key", seed=SEED, proportions=PROPORTIONS).alias("split")

    def split_of(count: int) -> dict[str, str]:
        keys = spark.createDataFrame([(f"key{i:03d}",) for i in range(count)], "key string")
        return {row["key"]: row["split"] for row in keys.select("key", column).collect()}

    small, large = split_of(10), split_of(120)
    assert {key: large[key] for key in small} == small


def test_only_missing_or_stale_rows_are_decoded(spark: SparkSession) -> None:
    split, _ = nodes.split_images(images_bronze(spark, 40), SEED, PROPORTIONS, IMAGE_LABELS)
    known = split.withColumn("image_size", F.lit(8)).drop("content")  # silver at size 8
    with NodeLog() as log:
        nodes.decode_images(split, known.filter("key < 'key030'"), IMAGES)
    assert log.messages == [
        "images_silver: decoding 10 rows (new or stale); 30 already in silver, unchanged."
    ]
    assert nodes.decode_images(split, known, IMAGES).count() == 0
    resized = IMAGES.model_copy(update={"image_size": 12})
    assert nodes.decode_images(split, known, resized).count() == 40  # a new image size
    moved = known.withColumn(
        "split", F.when(F.col("key") == "key007", "x").otherwise(F.col("split"))
    )
    rows = nodes.decode_images(split, moved, IMAGES)  # a new seed or split proportions
    assert [row["key"] for row in rows.select("key").collect()] == ["key007"]


def test_silver_of_an_older_layout_is_a_clear_error(spark: SparkSession) -> None:
    split, _ = nodes.split_images(images_bronze(spark, 40), SEED, PROPORTIONS, IMAGE_LABELS)
    old = split.select("key", "label")
    with pytest.raises(ValueError, match=r"Expected columns .* in images_silver .*Received"):
        nodes.decode_images(split, old, IMAGES)


# ---- texts -------------------------------------------------------------------------------------
def texts_bronze(spark: SparkSession, count: int, *, extra_word: str | None = None) -> DataFrame:
    """``count`` distinct texts per label from two words each (``count`` < 49)."""
    rows = []
    for label, (first, second) in zip(
        TEXT_LABELS, [("goal", "team"), ("soup", "stir")], strict=True
    ):
        for i in range(count):
            text = " ".join([first] * (1 + i % 7) + [second] * (1 + i // 7))
            if extra_word:
                text = f"{extra_word} {text}"
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append((f"{label}-{extra_word or ''}{i}", text, label, digest))
    return spark.createDataFrame(rows, "id string, text string, label string, text_sha256 string")


def fit_and_vectorize(
    root: Path, bronze: DataFrame, settings: TextPreprocessingParams
) -> tuple[DataFrame, list[str], int | str]:
    """The text branch up to the MERGE: the rows to MERGE, the vocabulary (saved, as Kedro
    does), and how many rows were vectorized."""
    split, _ = nodes.split_texts(bronze, SEED, PROPORTIONS, TEXT_LABELS)
    vocabulary = nodes.fit_vocabulary(split, dataset("vocabulary_saved", root).load(), settings)
    dataset("vocabulary", root).save(vocabulary)
    with NodeLog() as log:
        known = dataset("texts_silver_known", root).load()
        rows = nodes.vectorize_texts(split, known, vocabulary, settings)
    return rows, vocabulary, log.computed()


def texts_silver(spark: SparkSession, root: Path) -> dict[str, tuple[Any, ...]]:
    frame = spark.read.format("delta").load(str(root / "05_model_input/texts_silver"))
    columns = ("text", "split", "token_ids", "vectorizer_sha256")
    return {row["id"]: tuple(row[name] for name in columns) for row in frame.collect()}


@pytest.fixture(scope="module")
def text_runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """40 texts per label; then, on the state that run left, ``keep`` with 10 more per label
    holding a new word (up to the MERGE: the rows it would write); then ``refit`` with the same
    texts again (nothing to write), then with the 10 more (MERGEd)."""
    root = tmp_path_factory.mktemp("texts")
    base = texts_bronze(spark, 40)
    more = base.unionByName(texts_bronze(spark, 10, extra_word="penalty"))
    runs: dict[str, Any] = {}
    for name, bronze, settings in [
        ("first", base, REFIT),
        ("keep_more", more, KEEP),
        ("again", base, REFIT),
        ("more", more, REFIT),
    ]:
        rows, vocabulary, vectorized = fit_and_vectorize(root, bronze, settings)
        runs[name] = {"vectorized": vectorized, "vocabulary": vocabulary}
        if name in ("first", "more"):
            dataset("texts_silver@spark", root).save(rows)
            runs[name]["silver"] = texts_silver(spark, root)
        elif name == "keep_more":
            runs[name]["rows"] = {row["id"]: list(row["token_ids"]) for row in rows.collect()}
    return runs


def expected_ids(text: str, vocabulary: list[str]) -> list[int]:
    """TextVectorization's ids for a lower-case text without punctuation (as the test's are)."""
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = [index.get(token, 1) for token in text.split()][: REFIT.sequence_length]
    return ids + [0] * (REFIT.sequence_length - len(ids))


def test_refit_with_an_unchanged_vocabulary_vectorizes_nothing(text_runs: dict) -> None:
    assert text_runs["first"]["vectorized"] == "all"
    assert len(text_runs["first"]["silver"]) == 80
    assert text_runs["again"]["vocabulary"] == text_runs["first"]["vocabulary"]
    assert text_runs["again"]["vectorized"] == 0  # nothing to MERGE: silver stays as it is


def test_refit_with_a_changed_vocabulary_recomputes_every_row(text_runs: dict) -> None:
    more = text_runs["more"]
    new_rows = [row for key, row in more["silver"].items() if "penalty" in key]
    assert any(split == "train" for _, split, _, _ in new_rows)
    assert "penalty" in more["vocabulary"]
    assert "penalty" not in text_runs["first"]["vocabulary"]
    assert more["vectorized"] == 100
    for text, _, ids, _ in more["silver"].values():
        assert ids == expected_ids(text, more["vocabulary"])
    fingerprint = silver.vectorizer_fingerprint(more["vocabulary"], REFIT.sequence_length)
    assert {row[3] for row in more["silver"].values()} == {fingerprint}
    first = text_runs["first"]["silver"]
    assert {key: more["silver"][key][1] for key in first} == {k: v[1] for k, v in first.items()}


def test_keep_vectorizes_only_new_rows_and_new_words_are_oov(text_runs: dict) -> None:
    first, kept = text_runs["first"], text_runs["keep_more"]
    assert kept["vocabulary"] == first["vocabulary"]  # the saved one, loaded through the catalog
    assert "penalty" not in kept["vocabulary"]
    assert kept["vectorized"] == 20
    assert all("penalty" in key for key in kept["rows"])  # no existing row is rewritten
    assert len(kept["rows"]) == 20
    assert all(ids[0] == 1 for ids in kept["rows"].values())  # "penalty" starts each: [UNK]


def test_keep_without_a_saved_vocabulary_fits_one(spark: SparkSession) -> None:
    split, _ = nodes.split_texts(texts_bronze(spark, 40), SEED, PROPORTIONS, TEXT_LABELS)
    assert nodes.fit_vocabulary(split, None, KEEP) == nodes.fit_vocabulary(split, None, REFIT)


def test_keep_refuses_a_saved_vocabulary_larger_than_vocabulary_size(
    spark: SparkSession,
) -> None:
    split, _ = nodes.split_texts(texts_bronze(spark, 40), SEED, PROPORTIONS, TEXT_LABELS)
    saved = ["", "[UNK]", *(f"w{i}" for i in range(60))]
    with pytest.raises(ValueError, match=r"62 tokens, more than vocabulary_size=50"):
        nodes.fit_vocabulary(split, saved, KEEP)


def test_vectorizer_fingerprint_changes_with_vocabulary_and_length() -> None:
    base = silver.vectorizer_fingerprint(["", "[UNK]", "a", "b"], 6)
    assert base == silver.vectorizer_fingerprint(["", "[UNK]", "a", "b"], 6)
    assert base != silver.vectorizer_fingerprint(["", "[UNK]", "b", "a"], 6)
    assert base != silver.vectorizer_fingerprint(["", "[UNK]", "a", "b"], 7)


# ---- the parameter -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_params() -> dict:
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    return dict(loader["parameters"])


def test_vocabulary_policy_is_stated_in_the_shipped_parameters(base_params: dict) -> None:
    assert base_params["preprocessing"]["texts"]["vocabulary_policy"] == "refit"
    validate_parameters(base_params)


@pytest.mark.parametrize(
    ("value", "message"),
    [("sometimes", "Input should be 'refit' or 'keep'"), (None, "Field required")],
)
def test_bad_or_missing_vocabulary_policy_fails_naming_it(
    base_params: dict, value: str | None, message: str
) -> None:
    params = copy.deepcopy(base_params)
    texts = params["preprocessing"]["texts"]
    if value is None:
        del texts["vocabulary_policy"]
    else:
        texts["vocabulary_policy"] = value
    with pytest.raises(ValueError, match=r"preprocessing\.texts\.vocabulary_policy") as raised:
        validate_parameters(params)
    assert message in str(raised.value)

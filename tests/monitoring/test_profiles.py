"""Profiles computed by Spark: counts on the training edges, nulls apart, image and text
features."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from keras_lakehouse.monitoring.features import (
    IMAGE_FEATURES,
    TEXT_FEATURES,
    image_features,
    text_features,
)
from keras_lakehouse.monitoring.histograms import CATEGORICAL, NUMERIC
from keras_lakehouse.monitoring.profiles import (
    histograms_of,
    profile_document,
    profile_frame,
    profile_rows,
)

FEATURES = {"size": NUMERIC, "colour": CATEGORICAL}


def test_a_later_frame_is_counted_on_the_reference_edges(spark) -> None:
    training = spark.createDataFrame(
        [(float(value), "red" if value % 2 else "blue") for value in range(1, 101)],
        "size double, colour string",
    )
    reference = profile_frame(training, FEATURES)
    assert len(reference["size"].edges) == 10  # nine deciles and the edge above the last
    assert reference["size"].rows == 100
    assert reference["size"].stats["mean"] == pytest.approx(50.5)
    assert reference["colour"].counts == {"red": 50, "blue": 50}

    later = spark.createDataFrame(
        [(500.0, "green"), (-3.0, "red"), (None, None)], "size double, colour string"
    )
    current = profile_frame(later, FEATURES, reference=reference)
    assert current["size"].edges == reference["size"].edges
    counts = current["size"].counts
    assert counts[next(iter(counts))] == 1  # below every training value: the first bin
    assert counts[list(counts)[-1]] == 1  # above every training value: the last bin
    assert current["size"].nulls == 1
    assert current["colour"].nulls == 1
    assert current["colour"].counts == {"green": 1, "red": 1}


def test_profile_rows_name_every_bin_with_keys_that_are_never_null(spark) -> None:
    frame = spark.createDataFrame([(1.0, "a"), (None, "b")], "size double, colour string")
    histograms = profile_frame(frame, FEATURES)
    document = profile_document(
        scope="inference",
        modality="image",
        model={"name": "m", "version": "3"},
        source={},
        rows=2,
        histograms=histograms,
    )
    assert histograms_of(document)["size"] == histograms["size"]  # the JSON round trip
    rows = profile_rows(document, "run-1")
    keys = ("run_id", "model_name", "model_version", "scope", "feature", "bin")
    assert all(row[key] is not None for row in rows for key in keys)
    assert {row["bin"] for row in rows if row["feature"] == "size"} >= {"null", "= 1"}
    assert sum(row["count"] for row in rows if row["feature"] == "colour") == 2


def test_a_document_of_another_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="monitoring profile of schema 1"):
        histograms_of({"schema": 99, "features": {}})


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_features_are_measured_from_the_bytes_and_bad_bytes_give_nulls(spark) -> None:
    frame = spark.createDataFrame(
        [(png((200, 100, 0), (40, 20)),), (b"not an image",), (None,)], "content binary"
    )
    rows = image_features(frame, "content", max_pixels=10_000).collect()
    assert set(rows[0].asDict()) == set(IMAGE_FEATURES)
    first = rows[0]
    assert (first.format, first.width, first.height, first.aspect) == ("PNG", 40.0, 20.0, 2.0)
    assert (first.brightness_r, first.brightness_g, first.brightness_b) == (200.0, 100.0, 0.0)
    assert first.contrast_r == 0.0  # one colour
    assert all(value is None for value in rows[1].asDict().values())
    assert all(value is None for value in rows[2].asDict().values())


def test_text_features_count_tokens_unknown_tokens_and_character_classes(spark) -> None:
    frame = spark.createDataFrame([("Goal! The team won 2 - 1.",), ("",)], "text string")
    vocabulary = ["", "[UNK]", "goal", "the", "team"]
    rows = text_features(frame, "text", vocabulary).collect()
    assert set(rows[0].asDict()) == set(TEXT_FEATURES)
    first = rows[0]
    # Tokens as the vectorizer splits them: goal the team won 2 1 (punctuation stripped).
    assert first.tokens == 6.0
    assert first.oov_rate == pytest.approx(3 / 6)  # won, 2, 1
    assert first.digits == pytest.approx(2 / 25)
    shares = first.letters + first.digits + first.punctuation + first.whitespace + first.other
    assert shares == pytest.approx(1.0)
    assert rows[1].tokens == 0.0
    assert rows[1].oov_rate is None

"""The features a profile describes, as Spark columns (computed in the executors).

Images (from their encoded bytes, as a client sends them): ``width``, ``height``, ``aspect``
(width / height), mean ``brightness_r/g/b`` and ``contrast_r/g/b`` (standard deviation) per RGB
channel, and ``format``. Brightness and contrast are measured on the image reduced to at most
``STATS_SIDE`` pixels a side (a box filter keeps channel means; the same reduction is used at
training and at scoring, so the two compare).

Texts: ``tokens`` (after the vectorizer's standardisation), ``oov_rate`` (share of tokens outside
the model's vocabulary) and the share of characters that are ``letters``, ``digits``,
``punctuation``, ``whitespace`` or ``other`` (Unicode classes: language-agnostic).

Outputs: ``predicted_label`` and ``confidence`` (the top class's probability).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as T  # noqa: N812

from keras_lakehouse.ingest.tokens import keras_standardize
from keras_lakehouse.monitoring.histograms import CATEGORICAL, NUMERIC

STATS_SIDE = 128
CHANNELS = ("r", "g", "b")
IMAGE_FEATURES: dict[str, str] = {
    "width": NUMERIC,
    "height": NUMERIC,
    "aspect": NUMERIC,
    **{f"brightness_{channel}": NUMERIC for channel in CHANNELS},
    **{f"contrast_{channel}": NUMERIC for channel in CHANNELS},
    "format": CATEGORICAL,
}
CHARACTER_CLASSES = {
    "letters": r"\p{L}",
    "digits": r"\p{N}",
    "punctuation": r"\p{P}",
    "whitespace": r"\s",
}
TEXT_FEATURES: dict[str, str] = {
    "tokens": NUMERIC,
    "oov_rate": NUMERIC,
    **{name: NUMERIC for name in CHARACTER_CLASSES},
    "other": NUMERIC,
}
OUTPUT_FEATURES: dict[str, str] = {"predicted_label": CATEGORICAL, "confidence": NUMERIC}
LABEL_FEATURES: dict[str, str] = {"label": CATEGORICAL}
# Confidence is a probability: fixed equal-width bins, not training deciles.
CONFIDENCE_EDGES = tuple(round(0.1 * step, 1) for step in range(1, 10))

_IMAGE_SCHEMA = T.StructType(
    [
        T.StructField("format", T.StringType()),
        T.StructField("width", T.DoubleType()),
        T.StructField("height", T.DoubleType()),
        T.StructField("aspect", T.DoubleType()),
        *(T.StructField(f"brightness_{channel}", T.DoubleType()) for channel in CHANNELS),
        *(T.StructField(f"contrast_{channel}", T.DoubleType()) for channel in CHANNELS),
    ]
)


def image_features(images: DataFrame, content: str, max_pixels: int) -> DataFrame:
    """One row of ``IMAGE_FEATURES`` per image (nulls where an image cannot be decoded).

    Args:
        images: Rows with the encoded image bytes in ``content``.
        content: The column of bytes.
        max_pixels: The ingestion cap: larger images are not decoded (their features are null).
    """
    measure = _image_measurer(max_pixels)
    return images.select(measure(F.col(content)).alias("features")).select("features.*")


def text_features(texts: DataFrame, text: str, vocabulary: list[str]) -> DataFrame:
    """One row of ``TEXT_FEATURES`` per text.

    Args:
        texts: Rows with a ``text`` column.
        text: Its name.
        vocabulary: The model's tokens (padding and OOV tokens first, as preprocessing fits it).
    """
    tokens = F.filter(F.split(keras_standardize(F.col(text)), r"\s+"), lambda token: token != "")
    length = F.greatest(F.length(text), F.lit(1))
    shares = {
        name: (length - F.length(F.regexp_replace(text, pattern, ""))) / length
        for name, pattern in CHARACTER_CLASSES.items()
    }
    return texts.select(
        F.size(tokens).cast("double").alias("tokens"),
        _oov_counter(vocabulary)(tokens).alias("oov_rate"),
        *(share.alias(name) for name, share in shares.items()),
    ).withColumn("other", F.greatest(F.lit(0.0), 1 - sum(F.col(name) for name in shares)))


def output_features(predictions: DataFrame) -> DataFrame:
    """``predicted_label`` and ``confidence`` of prediction rows (the ``predictions`` layout)."""
    return predictions.select("predicted_label", F.col("probability").alias("confidence"))


def _oov_counter(vocabulary: list[str]) -> Any:
    """A pandas UDF: the share of each row's tokens not in ``vocabulary`` (null without tokens).
    The vocabulary travels with the function (a set per task), not through a join."""
    known = frozenset(vocabulary[2:])

    @F.pandas_udf(T.DoubleType())
    def oov_rate(tokens: pd.Series) -> pd.Series:
        return pd.Series(
            [
                sum(token not in known for token in row) / len(row) if len(row) else None
                for row in tokens
            ],
            dtype="float64",
        )

    return oov_rate


def _image_measurer(max_pixels: int) -> Any:
    @F.pandas_udf(_IMAGE_SCHEMA)
    def measure(content: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            [_measure_image(value, max_pixels) for value in content],
            columns=[field.name for field in _IMAGE_SCHEMA.fields],
        )

    return measure


def _measure_image(content: bytes | None, max_pixels: int) -> dict[str, Any]:
    from PIL import Image

    from keras_lakehouse.serving.serving_code import decode_rgb, open_image

    if content is None:
        return {}
    try:
        with open_image(bytes(content)) as header:
            found: dict[str, Any] = {
                "format": header.format,
                "width": float(header.width),
                "height": float(header.height),
                "aspect": header.width / max(1, header.height),
            }
        image = decode_rgb(bytes(content), max_pixels=max_pixels)
    except Exception:  # checked images decode; anything else has null features, not a crash
        return {}
    image.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    for index, channel in enumerate(CHANNELS):
        found[f"brightness_{channel}"] = float(pixels[:, index].mean())
        found[f"contrast_{channel}"] = float(pixels[:, index].std())
    return found

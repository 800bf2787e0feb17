"""The serving code every registered model carries: raw input in, label and probabilities out.

This one file is the single implementation of what turns raw input into the model's input: the
pipelines import it (preprocessing writes silver with ``resize_rgb`` and the vectorizer; the
Kedro-saved models are evaluated with ``Scorer``), and every registered model version stores a
copy of it beside its weights (``serving_model.py`` loads that copy). So a model loads where
``keras_lakehouse`` is not installed (Databricks Model Serving), and an old version keeps running
the code it was registered with after this file changes.

It must stay self-contained: the standard library, numpy, pandas, Pillow and (lazily) Keras —
the distributions ``serving.SERVING_DISTRIBUTIONS`` pins into each model's requirements. A test
checks that nothing else is imported.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

IMAGE_COLUMN = "image"  # encoded image file bytes (PNG, JPEG, …)
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
PROBABILITY_COLUMN = "probability"
CLASS_PREFIX = "prob_"
PREDICT_BATCH = 64
RGB_BACKGROUND = (255, 255, 255)


# ---- images -------------------------------------------------------------------------------------
def open_image(content: bytes) -> Image.Image:
    """Pillow's lazy image over ``content``; a decompression bomb raises instead of warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(content))


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB: grayscale, palette, CMYK, 16-bit and alpha modes included.

    Transparent pixels are composited over white, so a transparent background does not turn into
    whatever colour the hidden pixels had.
    """
    if image.mode == "RGB":
        return image
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*RGB_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16/32-bit grayscale: scale to 8 bits before converting.
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def decode_rgb(content: bytes, *, max_pixels: int) -> Image.Image:
    """Decode ``content`` to an upright RGB image (EXIF orientation applied).

    Raises:
        ValueError: When the image is above ``max_pixels``.
    """
    with open_image(content) as image:
        if image.width * image.height > max_pixels:
            raise ValueError(
                f"Image of {image.width}x{image.height} pixels is above the cap of {max_pixels}."
            )
        upright = ImageOps.exif_transpose(image)
        return to_rgb(upright).copy()


def resize_rgb(content: bytes, size: int, max_pixels: int) -> bytes:
    """Decode, normalise to RGB and resize to ``size``×``size``; uint8 HWC as raw bytes."""
    image = decode_rgb(content, max_pixels=max_pixels).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(image, dtype=np.uint8).tobytes()


# ---- texts --------------------------------------------------------------------------------------
def build_vectorizer(vocabulary: list[str], sequence_length: int) -> Any:
    """A ``keras.layers.TextVectorization`` with a fixed vocabulary (never adapted here).

    Args:
        vocabulary: Tokens by id, starting with the padding ``""`` and OOV ``"[UNK]"`` tokens
            (as preprocessing's ``fit_vocabulary`` returns them).
        sequence_length: Output length: shorter texts are padded with 0, longer ones cut.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN banner from every worker
    import keras

    if vocabulary[:2] != ["", "[UNK]"]:
        raise ValueError(
            "vocabulary must start with the padding and OOV tokens ['', '[UNK]']. "
            f"Received: {vocabulary[:2]}"
        )
    return keras.layers.TextVectorization(
        vocabulary=vocabulary[2:],
        output_mode="int",
        output_sequence_length=sequence_length,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
    )


# ---- the model ----------------------------------------------------------------------------------
def load_keras(path: str | os.PathLike[str]) -> Any:
    """A ``.keras`` file, loaded with ``safe_mode=True`` (no arbitrary code from the file)."""
    import keras

    if not str(path).endswith(".keras"):
        raise ValueError(f"Only .keras files are loaded (never .h5 or pickles). Received: {path}")
    return keras.saving.load_model(path, safe_mode=True, compile=False)


@dataclass(frozen=True)
class ServingSpec:
    """Everything besides the weights that turns raw input into the model's input."""

    modality: str  # "image" | "text"
    labels: list[str]  # by class index
    image_size: int | None = None
    max_pixels: int | None = None
    sequence_length: int | None = None
    vocabulary: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.modality not in {"image", "text"}:
            raise ValueError(f"modality must be 'image' or 'text'. Received: {self.modality!r}")
        if self.modality == "image" and not (self.image_size and self.max_pixels):
            raise ValueError("An image model needs image_size and max_pixels.")
        if self.modality == "text" and not (self.sequence_length and self.vocabulary):
            raise ValueError("A text model needs sequence_length and vocabulary.")

    @property
    def input_column(self) -> str:
        return IMAGE_COLUMN if self.modality == "image" else TEXT_COLUMN

    @classmethod
    def from_label_map(
        cls, modality: str, label_map: dict[str, int], **settings: Any
    ) -> ServingSpec:
        """Labels ordered by their index in the label map fitted in preprocessing."""
        return cls(modality=modality, labels=labels_by_index(label_map), **settings)


class Scorer:
    """A Keras classifier and its spec: raw input rows → label, probability, class columns."""

    def __init__(self, model: Any, spec: ServingSpec) -> None:
        self.model = model
        self.spec = spec
        self._vectorizer = None
        if spec.modality == "text":
            self._vectorizer = build_vectorizer(spec.vocabulary, spec.sequence_length)

    def inputs(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input array for the raw rows of ``frame``."""
        column = self.spec.input_column
        if column not in frame.columns:
            raise ValueError(
                f"The {self.spec.modality} model expects a column {column!r}. "
                f"Received columns: {list(frame.columns)}"
            )
        values = frame[column].tolist()
        if self.spec.modality == "image":
            size = self.spec.image_size
            if not values:
                return np.zeros((0, size, size, 3), dtype=np.uint8)
            return np.stack([self._pixels(index, value) for index, value in enumerate(values)])
        bad = [index for index, value in enumerate(values) if not isinstance(value, str)]
        if bad:
            raise ValueError(
                f"Column 'text' must hold strings. Received non-strings at rows {bad[:10]}"
            )
        return np.asarray(self._vectorizer(np.asarray(values, dtype=object))).astype(np.int32)

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.inputs(frame)
        if len(x) == 0:
            return np.zeros((0, len(self.spec.labels)), dtype=np.float32)
        return np.asarray(self.model.predict(x, batch_size=PREDICT_BATCH, verbose=0))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return probabilities_frame(self.probabilities(frame), self.spec.labels)

    def _pixels(self, index: int, value: Any) -> np.ndarray:
        size, max_pixels = self.spec.image_size, self.spec.max_pixels
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ValueError(
                f"Column 'image' must hold encoded image bytes. Received {type(value).__name__} "
                f"at row {index}"
            )
        try:
            raw = resize_rgb(bytes(value), size, max_pixels)
        except Exception as error:
            raise ValueError(f"Row {index} is not a readable image: {error}") from error
        return np.frombuffer(raw, dtype=np.uint8).reshape(size, size, 3)


def labels_by_index(label_map: dict[str, int]) -> list[str]:
    """The labels of a label map (label → index) in index order."""
    return sorted(label_map, key=label_map.get)


def probabilities_frame(probabilities: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """``label`` (the argmax), its ``probability`` and one ``prob_<label>`` column per class."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
    frame = pd.DataFrame(
        {
            LABEL_COLUMN: [labels[index] for index in best],
            PROBABILITY_COLUMN: probabilities[np.arange(len(best)), best],
        }
    )
    for index, label in enumerate(labels):
        frame[f"{CLASS_PREFIX}{label}"] = probabilities[:, index]
    return frame

"""The registered model: raw input in, label and probabilities out.

Serving must not drift from training, so the MLflow model does its own preprocessing with the
same functions the pipelines use: image bytes are decoded, made RGB and resized by
``imaging.resize_rgb`` (as preprocessing wrote silver), texts are turned into token ids by the
``vectorizer`` layer (as preprocessing did). The MLflow model is logged as code
(``serving_model.py``), not as a pickle, and loads the ``.keras`` file with ``safe_mode=True``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keras_lakehouse.imaging import resize_rgb

IMAGE_COLUMN = "image"  # encoded image file bytes (PNG, JPEG, …)
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
PROBABILITY_COLUMN = "probability"
CLASS_PREFIX = "prob_"
PREDICT_BATCH = 64
MODEL_CODE = Path(__file__).with_name("serving_model.py")
# What the registered model needs at load time (pinned to the versions it was trained with).
SERVING_DISTRIBUTIONS = ("tensorflow", "keras", "numpy", "pandas", "pillow", "mlflow")


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
        if self.modality == "image" and not (self.image_size and self.max_pixels):
            raise ValueError("An image model needs image_size and max_pixels.")
        if self.modality == "text" and not (self.sequence_length and self.vocabulary):
            raise ValueError("A text model needs sequence_length and vocabulary.")
        if self.modality not in {"image", "text"}:
            raise ValueError(f"modality must be 'image' or 'text'. Received: {self.modality!r}")

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
            from keras_lakehouse.vectorizer import build_vectorizer

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


def load_keras(path: str | Path) -> Any:
    """A ``.keras`` file, loaded with ``safe_mode=True`` (no arbitrary code from the file)."""
    import keras

    if Path(path).suffix != ".keras":
        raise ValueError(f"Only .keras files are loaded (never .h5 or pickles). Received: {path}")
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def log_serving_model(model: Any, spec: ServingSpec, example: pd.DataFrame) -> Any:
    """Log the raw-input pyfunc model to the active MLflow run (as code, not a pickle).

    Returns:
        MLflow's ``ModelInfo``.
    """
    import mlflow
    from mlflow.models import infer_signature

    output = Scorer(model, spec).predict(example)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "model.keras"
        model.save(weights)
        spec_file = Path(folder) / "spec.json"
        spec_file.write_text(json.dumps(asdict(spec)))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"model": str(weights), "spec": str(spec_file)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_requirements(),
        )


def _requirements() -> list[str]:
    """Pinned, instead of MLflow inferring them by loading the model in a subprocess (slow)."""
    return [f"{name}=={metadata.version(name)}" for name in SERVING_DISTRIBUTIONS]

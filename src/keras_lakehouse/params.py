"""Typed parameter models. A hook checks the raw merged parameters at start-up
(``params_validation.validate_parameters``, one model per section), naming any invalid value.
A node input ``params:<path>`` annotated with a model here receives an instance built by Kedro
(``kedro.validation``). Typed inputs never nest (``params:a`` and ``params:a.b`` both typed make
Kedro fail): each node takes the narrowest section it needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KNOWN_IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"})


class StrictModel(BaseModel):
    """A model that rejects unknown keys (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _labels_are_unique(labels: list[str]) -> list[str]:
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique. Received: {labels}")
    if any(not label.strip() for label in labels):
        raise ValueError(f"labels must be non-empty strings. Received: {labels}")
    return labels


class ImageIngestionParams(StrictModel):
    """How raw image files are checked before they enter ``images_bronze``."""

    allowed_labels: list[str] = Field(min_length=2)
    allowed_formats: list[str] = Field(min_length=1)
    max_bytes: int = Field(gt=0)
    max_pixels: int = Field(gt=0)

    _unique_labels = field_validator("allowed_labels")(_labels_are_unique)

    @field_validator("allowed_formats")
    @classmethod
    def _formats_are_known(cls, formats: list[str]) -> list[str]:
        unknown = sorted(set(formats) - KNOWN_IMAGE_FORMATS)
        if unknown:
            known = sorted(KNOWN_IMAGE_FORMATS)
            raise ValueError(f"allowed_formats must be among {known} (Pillow). Received: {unknown}")
        return formats


class TextIngestionParams(StrictModel):
    """How raw text files (CSV / JSON lines with ``id,text,label``) are checked."""

    allowed_labels: list[str] = Field(min_length=2)
    max_text_chars: int = Field(gt=0)
    max_bytes: int = Field(gt=0)

    _unique_labels = field_validator("allowed_labels")(_labels_are_unique)


class IngestionParams(StrictModel):
    """The ``ingestion`` section."""

    images: ImageIngestionParams
    texts: TextIngestionParams
    full_refresh: bool


class ExpectationSpec(StrictModel):
    """One Great Expectations expectation, by its snake_case name, with a severity."""

    expectation: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"


class ClassBalanceSpec(StrictModel):
    """Each label must hold at least ``min_fraction`` of the rows."""

    column: str
    min_fraction: float = Field(gt=0, lt=1)
    severity: Literal["error", "warn"] = "error"


class SuiteParams(StrictModel):
    """A data-quality suite for one table (``conf/<env>/expectations/<table>.yml``)."""

    table: str
    expectations: list[ExpectationSpec] = Field(min_length=1)
    class_balance: ClassBalanceSpec | None = None
    # Table level: the gate fails when the last ingestion quarantined more than this share of
    # its raw records (a broken source, not one bad file).
    max_rejected_fraction: float | None = Field(default=None, ge=0, le=1)


SPLIT_NAMES = ("train", "val", "test")
SPLIT_TOLERANCE = 1e-6
MIN_IMAGE_SIZE = 8


class ImagePreprocessingParams(StrictModel):
    """How images become model input."""

    image_size: int = Field(ge=MIN_IMAGE_SIZE)
    max_pixels: int = Field(gt=0)


class TextPreprocessingParams(StrictModel):
    """How texts become token ids. ``vocabulary_policy`` (new train rows): ``refit`` refits and
    recomputes every row's ids when the vocabulary changed; ``keep`` keeps it (new words are OOV)
    and vectorizes only new rows."""

    vocabulary_size: int = Field(gt=2)
    sequence_length: int = Field(gt=0)
    vocabulary_policy: Literal["refit", "keep"]


class SplitParams(StrictModel):
    """The share of rows in each split (``train``, ``val``, ``test``); they sum to 1."""

    train: float = Field(gt=0)
    val: float = Field(gt=0)
    test: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _names_every_split(cls, split: Any) -> Any:
        if isinstance(split, Mapping) and set(split) != set(SPLIT_NAMES):
            raise ValueError(f"split must name exactly {list(SPLIT_NAMES)}. Received: {split}")
        return split

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if abs(total - 1) > SPLIT_TOLERANCE:
            raise ValueError(
                f"split proportions must sum to 1. Received: {self.model_dump()} (sum {total})"
            )
        return self


class PreprocessingParams(StrictModel):
    """The ``preprocessing`` section."""

    seed: int
    split: SplitParams
    image_labels: list[str] = Field(min_length=2)
    text_labels: list[str] = Field(min_length=2)
    images: ImagePreprocessingParams
    texts: TextPreprocessingParams


class AugmentationParams(StrictModel):
    """Train-time augmentation (the article's ImageDataGenerator); 0 / false switches one off."""

    shear: float = Field(ge=0, lt=1)
    zoom: float = Field(ge=0, lt=1)
    horizontal_flip: bool


class FitParams(StrictModel):
    """What every model's training shares."""

    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    optimizer: Literal["adam", "sgd"]
    learning_rate: float = Field(gt=0)
    early_stopping_patience: int = Field(ge=0)
    shuffle_buffer: int = Field(ge=0)


class CnnParams(FitParams):
    """The image model."""

    filters: list[int] = Field(min_length=1)
    dense_units: int = Field(gt=0)
    batch_norm: bool
    dropout: float = Field(ge=0, lt=1)
    augmentation: AugmentationParams

    @field_validator("filters")
    @classmethod
    def _filters_are_positive(cls, filters: list[int]) -> list[int]:
        if any(count <= 0 for count in filters):
            raise ValueError(f"filters must be positive. Received: {filters}")
        return filters


class LstmParams(FitParams):
    """The text model."""

    embedding_dim: int = Field(gt=0)
    units: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)


class TrainingParams(StrictModel):
    """The ``training`` section."""

    seed: int
    strategy: Literal["default", "mirrored", "multi_worker"]
    num_devices: int = Field(gt=0)
    num_workers: int = Field(gt=0)
    # multi_worker outside a cluster (a local Spark master): TensorFlow's gRPC servers listen
    # on every interface, unauthenticated and unencrypted, while training runs. Off unless set.
    allow_open_grpc_ports_locally: bool = False
    cnn: CnnParams
    lstm: LstmParams


class GateParams(StrictModel):
    """One model's registry gate."""

    registered_name: str = Field(min_length=1)  # catalog.schema.model on Unity Catalog
    floor: float = Field(ge=0, le=1)  # below it the run fails and nothing is registered
    min_delta: float = Field(ge=0, le=1)  # how much better than the champion to take the alias


class EvaluationParams(StrictModel):
    """What the evaluation reports and how the registry gate decides."""

    metric: Literal["accuracy", "macro_f1"]
    grid_images: int = Field(ge=1, le=64)
    confidently_wrong: int = Field(ge=1)
    cnn: GateParams
    lstm: GateParams


class ServingParams(StrictModel):
    """Which registered version serving loads, and where executors read its files."""

    alias: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    model_cache_dir: str = Field(min_length=1)


class InferenceParams(StrictModel):
    """Batch inference: the registered models that score each modality, and the rows one
    scoring task takes (each task loads the model once)."""

    image_model: str = Field(min_length=1)
    text_model: str = Field(min_length=1)
    rows_per_scoring_task: int = Field(ge=1)


class Limits(StrictModel):
    """Where a monitored value starts to warn and to fail the run."""

    warn: float = Field(ge=0)
    fail: float = Field(ge=0)


class QualityLimits(StrictModel):
    """Live quality floors (smaller is worse): ``warn`` above ``fail``."""

    accuracy: Limits
    macro_f1: Limits

    @model_validator(mode="after")
    def _floors_in_order(self) -> QualityLimits:
        for name in ("accuracy", "macro_f1"):
            limits = getattr(self, name)
            if not limits.fail <= limits.warn <= 1:
                raise ValueError(f"{name}: expected fail <= warn <= 1. Received: {limits}")
        return self


class MonitoringParams(StrictModel):
    """Drift (Jensen–Shannon distance), quarantine rate and live quality thresholds."""

    min_rows: int = Field(ge=1)  # fewer rows in a run: its drift is reported, not judged
    min_rows_per_bin: int = Field(ge=1)  # small batches are compared over fewer, merged bins
    min_labelled_rows: int = Field(ge=1)
    drift: Limits
    features: dict[str, Limits] = {}  # per-feature overrides of `drift`
    quarantine_rate: Limits
    quality: QualityLimits

    @model_validator(mode="after")
    def _ceilings_in_order(self) -> MonitoringParams:
        ceilings = {"drift": self.drift, "quarantine_rate": self.quarantine_rate}
        ceilings |= {f"features.{name}": limits for name, limits in self.features.items()}
        for name, limits in ceilings.items():
            if not limits.warn <= limits.fail <= 1:
                raise ValueError(f"{name}: expected warn <= fail <= 1. Received: {limits}")
        return self

"""Start-up validation of the merged parameters: one model of ``params`` per section, and the
checks that span sections. A hook runs it before any node (``hooks.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from keras_lakehouse.params import (
    EvaluationParams,
    InferenceParams,
    IngestionParams,
    MonitoringParams,
    PreprocessingParams,
    ServingParams,
    SuiteParams,
    TrainingParams,
)

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "training": TrainingParams,
    "ingestion": IngestionParams,
    "preprocessing": PreprocessingParams,
    "evaluation": EvaluationParams,
    "serving": ServingParams,
    "inference": InferenceParams,
    "monitoring": MonitoringParams,
    "images_bronze_suite": SuiteParams,
    "texts_bronze_suite": SuiteParams,
}


def validate_parameters(parameters: Mapping[str, Any]) -> None:
    """Validate every known section present in ``parameters``, then the checks across sections.

    Args:
        parameters: The raw merged project parameters (``config_loader["parameters"]``, runtime
            ``--params`` included).

    Raises:
        ValueError: Naming each invalid parameter, the value received and what is allowed.
    """
    problems: list[str] = []
    for section, model in SECTION_MODELS.items():
        if section not in parameters:
            continue
        try:
            model.model_validate(parameters[section])
        except ValidationError as error:
            problems.extend(_describe(section, error))
    problems.extend(_cross_section_problems(parameters))
    if problems:
        raise ValueError("Invalid parameters:\n  " + "\n  ".join(problems))


def _cross_section_problems(parameters: Mapping[str, Any]) -> list[str]:
    """Checks that span sections: the CNN's pooling depth against the image size."""
    try:
        size = parameters["preprocessing"]["images"]["image_size"]
        filters = parameters["training"]["cnn"]["filters"]
    except (KeyError, TypeError):
        return []
    if isinstance(size, int) and isinstance(filters, list) and size < 2 ** len(filters):
        return [
            f"preprocessing.images.image_size: too small for {len(filters)} pooling blocks "
            f"(training.cnn.filters={filters}); at least {2 ** len(filters)} is needed. "
            f"Received: {size}"
        ]
    return []


def _describe(section: str, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        where = ".".join([section, *(str(part) for part in item["loc"])])
        lines.append(f"{where}: {item['msg']}. Received: {item.get('input')!r}")
    return lines

"""The registered model: raw input in, label and probabilities out, logged with its own code.

Serving must not drift from training, so the MLflow model preprocesses with the very functions
the pipelines use (``serving_code``: ``resize_rgb`` as preprocessing wrote silver, the vectorizer
as preprocessing computed token ids). It is logged as code (MLflow "models from code", never a
pickle): the entry file ``serving_model.py`` plus a copy of ``serving_code.py`` as an artifact, the
``.keras`` weights (loaded with ``safe_mode=True``), the spec, a signature and pinned pip
requirements. Loading it needs those requirements and nothing of ``keras_lakehouse``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from keras_lakehouse.serving.serving_code import (  # noqa: F401 - the package's serving API
    CLASS_PREFIX,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    PREDICT_BATCH,
    PROBABILITY_COLUMN,
    TEXT_COLUMN,
    Scorer,
    ServingSpec,
    labels_by_index,
    load_keras,
    probabilities_frame,
)

# The entry file MLflow runs on load, and the code it loads from the model's own artifacts.
MODEL_ENTRY = Path(__file__).with_name("serving_model.py")
SERVING_CODE = Path(__file__).with_name("serving_code.py")
# What the registered model imports at load time (pinned to the versions it was trained with):
# Model Serving installs exactly these. tests/serving/test_mlflow_model.py checks the list against
# the imports of the two files above.
SERVING_DISTRIBUTIONS = ("tensorflow", "keras", "numpy", "pandas", "pillow", "mlflow-skinny")


def log_serving_model(
    model: Any, spec: ServingSpec, example: pd.DataFrame, *, serving_code: Path = SERVING_CODE
) -> Any:
    """Log the raw-input pyfunc model to the active MLflow run (as code, not a pickle).

    Args:
        model: The trained Keras classifier.
        spec: How raw input becomes the model's input.
        example: Raw input rows: the input example, and the signature with the output.
        serving_code: The serving code the model carries (the package's own, by default).

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
            python_model=str(MODEL_ENTRY),
            artifacts={"model": str(weights), "spec": str(spec_file), "code": str(serving_code)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_requirements(),
        )


def _requirements() -> list[str]:
    """Pinned, instead of MLflow inferring them by loading the model in a subprocess (slow)."""
    return [f"{name}=={metadata.version(name)}" for name in SERVING_DISTRIBUTIONS]

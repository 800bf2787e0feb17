"""The MLflow model's entry file (logged as "models from code": MLflow runs this file on load).

It imports nothing from ``keras_lakehouse``: the serving code travels with the model as the
artifact ``code`` (a copy of ``serving_code.py`` taken at registration) and is loaded from the
model's own folder under a name unique to this load. So the model loads where the package is not
installed (Databricks Model Serving), and every version runs the code it was registered with, also
when two versions are loaded in one process.
"""

import importlib.util
import json
import sys
import uuid
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


def load_serving_code(path: str):
    """The module in ``path``, under a fresh name (never a cached module of another version)."""
    name = f"keras_lakehouse_serving_code_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


class KerasClassifier(PythonModel):
    """Raw images (bytes) or texts in; ``label``, ``probability``, ``prob_<label>`` out."""

    def load_context(self, context) -> None:
        code = load_serving_code(context.artifacts["code"])
        spec = code.ServingSpec(**json.loads(Path(context.artifacts["spec"]).read_text()))
        self._scorer = code.Scorer(code.load_keras(context.artifacts["model"]), spec)

    # A pandas hint: MLflow infers no schema from it (the signature logged with the model stays
    # the one that validates input) and stops warning, in every process that loads the model,
    # that the hint is missing.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self._scorer.predict(model_input)


mlflow.models.set_model(KerasClassifier())

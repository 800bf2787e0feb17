"""The MLflow model's code (logged as "models from code": MLflow runs this file on load)."""

import json
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel

from keras_lakehouse.serving import Scorer, ServingSpec, load_keras


class KerasClassifier(PythonModel):
    """Raw images (bytes) or texts in; ``label``, ``probability``, ``prob_<label>`` out."""

    def load_context(self, context) -> None:
        spec = ServingSpec(**json.loads(Path(context.artifacts["spec"]).read_text()))
        self._scorer = Scorer(load_keras(context.artifacts["model"]), spec)

    def predict(self, context, model_input, params=None):
        return self._scorer.predict(model_input)


mlflow.models.set_model(KerasClassifier())

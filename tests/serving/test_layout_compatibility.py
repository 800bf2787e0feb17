"""Models registered before the package was regrouped by stage keep loading and scoring.

``tests/fixtures/model_from_flat_layout`` was logged by ``log_serving_model`` when the package was
flat (``keras_lakehouse/serving.py``, ``serving_model.py``, ``serving_code.py``, commit 2fe93e1)
and downloaded from MLflow as it was. None of those module paths exist any more.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from keras_lakehouse.serving.integrity import CODE_FILES, folder_digest, verify_model_folder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_from_flat_layout"
FLAT_MODULES = ("keras_lakehouse.serving_code", "keras_lakehouse.serving_model")


def test_the_flat_modules_are_gone() -> None:
    """The fixture proves something only while the old module paths do not resolve."""
    for name in FLAT_MODULES:
        assert importlib.util.find_spec(name) is None, name


def test_a_model_logged_by_the_flat_layout_loads_and_predicts_as_it_did(tmp_path: Path) -> None:
    model_dir = shutil.copytree(FIXTURE, tmp_path / "model")  # MLflow may write beside it
    expected = json.loads((model_dir / "expected_predictions.json").read_text())
    model = mlflow.pyfunc.load_model(str(model_dir))
    output = model.predict(pd.DataFrame(expected["input"]))
    assert list(output["label"]) == expected["label"]
    for column in ("prob_a", "prob_b"):
        np.testing.assert_allclose(output[column], expected[column], atol=1e-6)


def test_the_code_it_carries_passes_the_load_time_integrity_check(tmp_path: Path) -> None:
    """``verify_model_folder`` runs on every load from the cache: the carried entry file and
    serving code must be reviewed versions (old entries of ``REVIEWED_CODE`` stay for this)."""
    model_dir = shutil.copytree(FIXTURE, tmp_path / "model")
    assert {"serving_model.py", "serving_code.py"} == set(CODE_FILES)
    verify_model_folder(model_dir, folder_digest(model_dir), model="flat-layout v1")

"""The registered model takes raw input and preprocesses it exactly as the pipelines did."""

from __future__ import annotations

import ast
import io
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from keras_lakehouse.ingest.images import pixels_to_array, resize_rgb
from keras_lakehouse.serving.mlflow_model import (
    MODEL_ENTRY,
    SERVING_CODE,
    SERVING_DISTRIBUTIONS,
    Scorer,
    ServingSpec,
    load_keras,
    log_serving_model,
)
from keras_lakehouse.serving.serving_code import build_vectorizer
from keras_lakehouse.training.models import build_cnn, build_lstm, compile_model

SIZE = 16
VOCABULARY = ["", "[UNK]", "ball", "goal", "code", "chip", "soup"]
LABEL_MAP = {"cooking": 0, "sports": 1, "technology": 2}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (30, 20), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cnn():
    model = build_cnn(image_size=SIZE, num_classes=3, filters=(4,), dense_units=8, batch_norm=False)
    spec = ServingSpec.from_label_map("image", LABEL_MAP, image_size=SIZE, max_pixels=10**6)
    return compile_model(model, optimizer="adam", learning_rate=0.01), spec


@pytest.fixture(scope="module")
def lstm():
    model = build_lstm(vocabulary_size=len(VOCABULARY), sequence_length=6, num_classes=3)
    spec = ServingSpec.from_label_map("text", LABEL_MAP, sequence_length=6, vocabulary=VOCABULARY)
    return compile_model(model, optimizer="adam", learning_rate=0.01), spec


def test_image_bytes_are_resized_like_preprocessing(cnn) -> None:
    model, spec = cnn
    images = [png((200, 10, 10)), png((10, 10, 200), (64, 64)), png((90, 0, 0), mode="L")]
    expected = model.predict(
        np.stack([pixels_to_array(resize_rgb(raw, SIZE, 10**6), SIZE) for raw in images]),
        verbose=0,
    )
    output = Scorer(model, spec).predict(pd.DataFrame({"image": images}))
    assert list(output.columns) == [
        "label",
        "probability",
        "prob_cooking",
        "prob_sports",
        "prob_technology",
    ]
    np.testing.assert_allclose(output.iloc[:, 2:].to_numpy(), expected, rtol=1e-6)
    assert output["label"].tolist() == [spec.labels[i] for i in expected.argmax(axis=1)]


def test_texts_are_vectorized_like_preprocessing(lstm) -> None:
    model, spec = lstm
    texts = ["Goal! Ball, goal.", "new CHIP code", "unknown words only"]
    ids = np.asarray(build_vectorizer(VOCABULARY, 6)(np.asarray(texts, dtype=object)))
    expected = model.predict(ids, verbose=0)
    output = Scorer(model, spec).predict(pd.DataFrame({"text": texts}))
    np.testing.assert_allclose(output.iloc[:, 2:].to_numpy(), expected, rtol=1e-6)


def test_bad_rows_are_named_in_the_error(cnn, lstm) -> None:
    with pytest.raises(ValueError, match="Row 1 is not a readable image"):
        Scorer(*cnn).predict(pd.DataFrame({"image": [png((1, 2, 3)), b"not an image"]}))
    with pytest.raises(ValueError, match="expects a column 'image'"):
        Scorer(*cnn).predict(pd.DataFrame({"text": ["x"]}))
    with pytest.raises(ValueError, match="non-strings at rows \\[1\\]"):
        Scorer(*lstm).predict(pd.DataFrame({"text": ["goal", None]}))


def test_only_keras_files_are_loaded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Only \.keras files"):
        load_keras(tmp_path / "model.h5")


def test_logged_model_loads_back_as_pyfunc_with_the_same_predictions(cnn, lstm) -> None:
    mlflow.set_experiment("serving-tests")
    for (model, spec), frame in (
        (cnn, pd.DataFrame({"image": [png((200, 10, 10)), png((0, 90, 0), (8, 40))]})),
        (lstm, pd.DataFrame({"text": ["goal ball", "soup"]})),
    ):
        with mlflow.start_run():
            info = log_serving_model(model, spec, frame)
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        assert loaded.metadata.get_input_schema().input_names() == [spec.input_column]
        pd.testing.assert_frame_equal(
            loaded.predict(frame), Scorer(model, spec).predict(frame), check_exact=False
        )
        # Models from code: the artifact holds our code file and the weights, no pickle.
        local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
        names = {path.name for path in local.rglob("*")}
        assert {"serving_model.py", "serving_code.py", "model.keras", "spec.json"} <= names
        assert not [name for name in names if name.endswith((".pkl", ".pickle", ".h5"))]


def test_spec_rejects_incomplete_settings() -> None:
    with pytest.raises(ValueError, match="image_size and max_pixels"):
        ServingSpec(modality="image", labels=["a", "b"])
    with pytest.raises(ValueError, match="modality must be"):
        ServingSpec(modality="audio", labels=["a"], sequence_length=3, vocabulary=["", "[UNK]"])


# Import name → distribution, for the third-party modules the model's own files may import.
DISTRIBUTION_OF = {"numpy": "numpy", "pandas": "pandas", "PIL": "pillow", "keras": "keras"}
DISTRIBUTION_OF |= {"mlflow": "mlflow-skinny"}  # what the ML runtime ships


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            found.add(node.module.split(".")[0])
    return found


def test_the_model_files_import_only_their_pinned_requirements() -> None:
    """What a registered model carries must load without keras_lakehouse (Model Serving): its two
    files import the standard library and the distributions pinned in its requirements only."""
    for path in (MODEL_ENTRY, SERVING_CODE):
        third_party = imported_modules(path) - set(sys.stdlib_module_names)
        assert "keras_lakehouse" not in third_party, path.name
        unknown = third_party - set(DISTRIBUTION_OF)
        assert not unknown, f"{path.name} imports {unknown}: add them to SERVING_DISTRIBUTIONS"
        assert {DISTRIBUTION_OF[name] for name in third_party} <= set(SERVING_DISTRIBUTIONS)
    assert "tensorflow" in SERVING_DISTRIBUTIONS  # Keras' backend


def test_a_version_keeps_the_serving_code_it_was_registered_with(lstm, tmp_path) -> None:
    """v1 is logged with today's code, v2 with a changed copy (no punctuation stripping); loaded
    side by side in one process, each scores with its own code."""
    model, spec = lstm
    changed = tmp_path / "serving_code.py"
    source = SERVING_CODE.read_text()
    assert 'standardize="lower_and_strip_punctuation"' in source
    changed.write_text(
        source.replace('standardize="lower_and_strip_punctuation"', "standardize=None")
    )
    frame = pd.DataFrame({"text": ["Goal! Ball, goal.", "CHIP code"]})
    mlflow.set_experiment("serving-tests")
    with mlflow.start_run():
        first = log_serving_model(model, spec, frame)
    with mlflow.start_run():
        second = log_serving_model(model, spec, frame, serving_code=changed)
    old = mlflow.pyfunc.load_model(first.model_uri)
    new = mlflow.pyfunc.load_model(second.model_uri)
    expected = Scorer(model, spec).predict(frame)
    pd.testing.assert_frame_equal(old.predict(frame), expected, check_exact=False)
    assert not np.allclose(
        new.predict(frame).filter(like="prob_").to_numpy(),
        expected.filter(like="prob_").to_numpy(),
    )
    pd.testing.assert_frame_equal(old.predict(frame), expected, check_exact=False)


@pytest.mark.slow  # a fresh process: the warning shows once per process
def test_loading_the_model_prints_no_type_hint_warning(lstm) -> None:
    """MLflow warns, in every process that loads a PythonModel whose ``predict`` has no type hint
    (each Spark worker of a scoring run), that hints are missing: the terminal's noise. In a fresh
    process, since MLflow shows that warning once per process."""
    import os
    import subprocess

    model, spec = lstm
    mlflow.set_experiment("serving-tests")
    with mlflow.start_run():
        info = log_serving_model(model, spec, pd.DataFrame({"text": ["goal ball"]}))
    code = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(model.predict(pd.DataFrame({'text': ['goal']}))['label'][0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code, info.model_uri],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "default"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() in LABEL_MAP
    assert "Add type hints" not in done.stderr, done.stderr[-3000:]

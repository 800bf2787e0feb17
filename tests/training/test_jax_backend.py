"""The model code is backend-neutral: the CNN and the LSTM train on JAX, from the loader's numpy
batches, and their ``.keras`` files predict the same under TensorFlow.

A fresh interpreter runs with ``KERAS_BACKEND=jax`` (Keras picks its backend once per process):
it builds and compiles both models with the project's builders at the test sizes (``conf/test``),
fits one short epoch on ``iter_batches`` (the CNN's batches augmented by ``build_augmentation``),
saves each model and its predictions on a fixed batch. TensorFlow cannot be imported there, as on
a machine without it, and never loads. This process (TensorFlow) then loads each file and predicts
on the same batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAIN_BATCHES = 3  # full batches of train rows: one short epoch
TEST_ROWS = 16  # the fixed batch both backends predict on
TOLERANCE = 1e-5

JAX_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys
    from pathlib import Path


    class NoTensorFlow(importlib.abc.MetaPathFinder):
        # As on a machine with JAX and no TensorFlow. (Keras 3.5 imports TensorFlow wherever it
        # is installed, whatever the backend: set_random_seed seeds it, saving checks its types.)
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "tensorflow":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)


    sys.meta_path.insert(0, NoTensorFlow())

    import keras
    import numpy as np

    from keras_lakehouse.training.loader import ImageColumns, TextColumns, iter_batches
    from keras_lakehouse.training.models import (
        build_augmentation, build_cnn, build_lstm, compile_model,
    )

    config = json.loads(sys.argv[1])
    out, seed = Path(config["out"]), config["seed"]
    keras.utils.set_random_seed(seed)
    ops = keras.ops


    def augmented(batches, layers):
        # What training.spec.augmenter does inside tf.data, in keras.ops.
        for x, y in batches:
            moved = layers(ops.cast(x, "float32"), training=True)
            yield ops.convert_to_numpy(ops.cast(ops.clip(ops.round(moved), 0, 255), "uint8")), y


    models = {
        "cnn": (build_cnn, ImageColumns(config["image_size"])),
        "lstm": (build_lstm, TextColumns(config["sequence_length"])),
    }
    for name, (build, decode) in models.items():
        settings = config[name]
        fit = settings["fit"]
        model = compile_model(
            build(**settings["build"]),
            optimizer=fit["optimizer"],
            learning_rate=fit["learning_rate"],
        )
        train = iter_batches(
            settings["files"], decode, batch_size=fit["batch_size"], split="train",
            shuffle_buffer=fit["shuffle_buffer"], seed=seed,
        )
        if fit.get("augmentation"):
            train = augmented(train, build_augmentation(**fit["augmentation"], seed=seed))
        model.fit(train, epochs=1, verbose=0)
        x, _ = next(iter_batches(settings["files"], decode, batch_size=1024, split="test"))
        model.save(out / f"{name}.keras")
        np.save(out / f"{name}_input.npy", x)
        np.save(out / f"{name}_jax.npy", model.predict(x, verbose=0))

    assert keras.backend.backend() == "jax", keras.backend.backend()
    assert "tensorflow" not in sys.modules, "TensorFlow was imported on the JAX backend"
    proof = {"backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules}
    print(json.dumps(proof))
    """
)


def env_test_parameters() -> dict[str, Any]:
    """The parameters of ``kedro run --env=test`` (conf/base with conf/test's sizes)."""
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env="test", **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def write_silver(path: Path, column: str, values: pa.Array, labels: int, train_rows: int) -> str:
    """Silver-like rows (``column``, ``label_index``, ``split``) in one Parquet file."""
    rows = len(values)
    table = pa.table(
        {
            column: values,
            "label_index": pa.array(np.arange(rows) % labels, pa.int32()),
            "split": ["train"] * train_rows + ["test"] * (rows - train_rows),
        }
    )
    pq.write_table(table, path)
    return str(path)


def model_settings(tmp_path: Path) -> dict[str, Any]:
    """Builder arguments (as the training nodes pass them), fit settings and a silver file for
    each model, at the test sizes."""
    from keras_lakehouse.params import PreprocessingParams, TrainingParams

    parameters = env_test_parameters()
    training = TrainingParams.model_validate(parameters["training"])
    preprocessing = PreprocessingParams.model_validate(parameters["preprocessing"])
    cnn, lstm = training.cnn, training.lstm
    size = preprocessing.images.image_size
    length = preprocessing.texts.sequence_length
    vocabulary_size = preprocessing.texts.vocabulary_size
    image_classes, text_classes = len(preprocessing.image_labels), len(preprocessing.text_labels)
    rng = np.random.default_rng(training.seed)

    image_train = TRAIN_BATCHES * cnn.batch_size
    pixels = rng.integers(0, 256, (image_train + TEST_ROWS, size, size, 3), np.uint8)
    images = pa.array([image.tobytes() for image in pixels], pa.binary())
    text_train = TRAIN_BATCHES * lstm.batch_size
    tokens = rng.integers(2, vocabulary_size, (text_train + TEST_ROWS, length), np.int32)
    # Padding (id 0) after 1 to `length` tokens: the LSTM's mask is part of what is compared.
    tokens[np.arange(length) >= rng.integers(1, length + 1, len(tokens))[:, None]] = 0
    texts = pa.array(tokens.tolist(), pa.list_(pa.int32()))
    return {
        "out": str(tmp_path),
        "seed": training.seed,
        "image_size": size,
        "sequence_length": length,
        "cnn": {
            "build": {
                "image_size": size,
                "num_classes": image_classes,
                "filters": cnn.filters,
                "dense_units": cnn.dense_units,
                "batch_norm": cnn.batch_norm,
                "dropout": cnn.dropout,
            },
            "fit": cnn.model_dump(),
            "files": [
                write_silver(
                    tmp_path / "images.parquet", "image", images, image_classes, image_train
                )
            ],
        },
        "lstm": {
            "build": {
                "vocabulary_size": vocabulary_size,
                "sequence_length": length,
                "num_classes": text_classes,
                "embedding_dim": lstm.embedding_dim,
                "units": lstm.units,
                "dropout": lstm.dropout,
            },
            "fit": lstm.model_dump(),
            "files": [
                write_silver(
                    tmp_path / "texts.parquet", "token_ids", texts, text_classes, text_train
                )
            ],
        },
    }


@pytest.mark.slow
def test_models_trained_on_jax_predict_the_same_under_tensorflow(tmp_path: Path) -> None:
    settings = model_settings(tmp_path)
    # CPU unless the environment says otherwise (JAX_PLATFORMS=cuda with a CUDA jaxlib); this
    # also keeps the CPU jaxlib from warning about a GPU it cannot use.
    env = {"JAX_PLATFORMS": "cpu", **os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, json.dumps(settings)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    proof = json.loads(done.stdout.strip().splitlines()[-1])
    assert proof == {"backend": "jax", "tensorflow": False}

    assert keras.backend.backend() == "tensorflow"
    for name in ("cnn", "lstm"):
        x = np.load(tmp_path / f"{name}_input.npy")
        jax_predictions = np.load(tmp_path / f"{name}_jax.npy")
        model = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        tf_predictions = model.predict(x, verbose=0)
        num_classes = settings[name]["build"]["num_classes"]
        assert jax_predictions.shape == (TEST_ROWS, num_classes), name
        assert np.isfinite(jax_predictions).all(), name
        np.testing.assert_allclose(jax_predictions.sum(axis=1), 1.0, rtol=1e-5, err_msg=name)
        # The rows differ by more than the tolerance, so the comparison can fail.
        assert not np.allclose(jax_predictions, jax_predictions[0], atol=TOLERANCE), name
        np.testing.assert_allclose(tf_predictions, jax_predictions, atol=TOLERANCE, err_msg=name)

"""The registered champion outside the project: a fresh virtual environment holding only the
model's own pip requirements (no keras_lakehouse) loads it from the registry and predicts like the
Kedro-saved model, and MLflow's scoring server answers Model Serving requests over HTTP."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from pyspark.sql import functions as F  # noqa: N812

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS = {"cnn": "keras_lakehouse_cnn", "lstm": "keras_lakehouse_lstm"}
ROWS = 12


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory, pip_install) -> Path:
    """A new virtual environment with the champion CNN's requirements.txt, no keras_lakehouse.

    Plus full ``mlflow`` at the model's mlflow-skinny version: the suite's registry is SQLite,
    which needs MLflow's SQL store to resolve ``models:/…`` (on Databricks, mlflow-skinny's Unity
    Catalog client does that). The project's lock constrains what the requirements leave open
    (MLflow 3.0.1 breaks with today's newest SQLAlchemy)."""
    uv = Path(sys.executable).parent / "uv"
    venv = tmp_path_factory.mktemp("serving") / "venv"
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{MODELS['cnn']}@champion"))
    requirements = (model / "requirements.txt").read_text()
    assert "keras_lakehouse" not in requirements
    skinny = next(line for line in requirements.splitlines() if line.startswith("mlflow-skinny=="))
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    done = pip_install(
        venv / "bin" / "python",
        ["-r", str(model / "requirements.txt"), skinny.replace("mlflow-skinny", "mlflow"),
         "-c", str(PROJECT_ROOT / "requirements.lock")],
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, f"installing the model's requirements failed:\n{done.stderr}"
    missing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import keras_lakehouse"],
        capture_output=True, text=True, env=env, cwd=venv, check=False,
    )  # fmt: skip
    assert missing.returncode != 0, "keras_lakehouse must not be importable in the serving venv"
    return venv


def serving_env(venv: Path) -> dict[str, str]:
    """The serving venv first on the PATH (the scoring server execs `uvicorn` from it)."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return env | {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    }


@pytest.fixture(scope="module")
def test_items(spark, trained_project) -> dict[str, object]:
    """Test-split items: raw bytes and texts, and what the Kedro-saved models predict for them."""
    project = trained_project[0]
    data = project / "data"
    silver = spark.read.format("delta").load(str(data / "05_model_input/images_silver"))
    bronze = spark.read.format("delta").load(str(data / "02_intermediate/images_bronze"))
    images = (
        silver.filter(F.col("split") == "test")
        .select("key", "image", "image_size")
        .join(bronze.select("key", "content"), "key")
        .orderBy("key")
        .limit(ROWS)
        .toPandas()
    )
    size = int(images["image_size"][0])
    pixels = np.stack([np.frombuffer(raw, np.uint8).reshape(size, size, 3) for raw in images.image])
    texts = (
        spark.read.format("delta")
        .load(str(data / "05_model_input/texts_silver"))
        .filter(F.col("split") == "test")
        .orderBy("id")
        .limit(ROWS)
        .toPandas()
    )
    token_ids = np.stack(texts["token_ids"].to_numpy()).astype(np.int32)
    return {
        "images": [bytes(raw) for raw in images["content"]],
        "texts": texts["text"].tolist(),
        "cnn": saved_model(project, "cnn").predict(pixels, verbose=0),
        "lstm": saved_model(project, "lstm").predict(token_ids, verbose=0),
    }


def saved_model(project: Path, name: str) -> keras.Model:
    """The model the default run saved (the first Kedro version)."""
    path = sorted(project.glob(f"data/06_models/{name}.keras/*/{name}.keras"))[0]
    return keras.saving.load_model(path, safe_mode=True)


LOAD_AND_PREDICT = """
import base64, json, sys
import mlflow, numpy as np, pandas as pd
items = json.load(sys.stdin)
out = {}
for key, name, column, values in (
    ("cnn", items["cnn"], "image", [base64.b64decode(v) for v in items["images"]]),
    ("lstm", items["lstm"], "text", items["texts"]),
):
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    output = model.predict(pd.DataFrame({column: values}))
    out[key] = output.filter(like="prob_").to_numpy().tolist()
print(json.dumps(out))
"""


def test_champion_loads_without_the_package_and_predicts_like_the_saved_model(
    serving_venv, test_items
) -> None:
    payload = {
        "cnn": MODELS["cnn"],
        "lstm": MODELS["lstm"],
        "images": [base64.b64encode(raw).decode() for raw in test_items["images"]],
        "texts": test_items["texts"],
    }
    done = subprocess.run(
        [str(serving_venv / "bin" / "python"), "-c", LOAD_AND_PREDICT],
        input=json.dumps(payload), capture_output=True, text=True, env=serving_env(serving_venv),
        cwd=serving_venv, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("cnn", "lstm"):
        np.testing.assert_allclose(np.asarray(served[key]), test_items[key], atol=1e-5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def wait_until_up(server: subprocess.Popen, port: int, log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"the scoring server exited ({server.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(
        f"the scoring server did not answer /ping in {seconds} s:\n{log.read_text()[-4000:]}"
    )


def test_scoring_server_answers_model_serving_requests(serving_venv, test_items, tmp_path) -> None:
    """`mlflow models serve` from the registry on 127.0.0.1, one server per model side by side;
    images as base64 in `dataframe_split`, texts in `inputs` — the Model Serving formats."""
    servers = {}
    for key in ("cnn", "lstm"):
        port, log = free_port(), tmp_path / f"{key}.log"
        command = [
            str(serving_venv / "bin" / "mlflow"), "models", "serve", "--model-uri",
            f"models:/{MODELS[key]}@champion", "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        with log.open("w") as handle:
            servers[key] = (
                subprocess.Popen(
                    command, stdout=handle, stderr=subprocess.STDOUT, env=serving_env(serving_venv),
                    cwd=tmp_path, start_new_session=True,
                ),
                port,
                log,
            )  # fmt: skip
    try:
        for server, port, log in servers.values():
            wait_until_up(server, port, log)
        images = [base64.b64encode(raw).decode() for raw in test_items["images"]]
        answers = {
            "cnn": post(
                servers["cnn"][1],
                {"dataframe_split": {"columns": ["image"], "data": [[i] for i in images]}},
            ),
            "lstm": post(servers["lstm"][1], {"inputs": {"text": test_items["texts"]}}),
        }
    finally:
        for server, _, _ in servers.values():  # the server and its uvicorn worker
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    for key, answer in answers.items():
        rows = answer["predictions"]
        assert len(rows) == ROWS
        classes = [name for name in rows[0] if name.startswith("prob_")]  # in class-index order
        probabilities = np.asarray([[row[name] for name in classes] for row in rows])
        np.testing.assert_allclose(probabilities, test_items[key], atol=1e-5)
        assert [row["label"] for row in rows] == [
            classes[index].removeprefix("prob_") for index in test_items[key].argmax(axis=1)
        ]

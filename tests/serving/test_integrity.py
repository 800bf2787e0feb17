"""Loading a registered model runs only verified files and reviewed code; the model cache never
serves a half-written, stale or changed copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from keras_lakehouse.serving.integrity import (
    DIGEST_TAG,
    REVIEWED_CODE,
    ModelIntegrityError,
    file_sha256,
    folder_digest,
)
from keras_lakehouse.serving.mlflow_model import MODEL_ENTRY, SERVING_CODE, log_serving_model
from keras_lakehouse.serving.registry import register_and_promote
from keras_lakehouse.serving.scoring import fetch_version

FRAME = pd.DataFrame({"text": ["goal", "code goal"]})


@pytest.fixture(scope="module")
def register(tiny_text_model):
    """Logs a small model (optionally with other serving code) and registers it via the gate."""
    model, spec = tiny_text_model
    mlflow.set_experiment("integrity-tests")

    def registered(name: str, serving_code: Path = SERVING_CODE) -> str:
        with mlflow.start_run() as run:
            info = log_serving_model(model, spec, FRAME, serving_code=serving_code)
        report = register_and_promote(
            name=name,
            model_uri=info.model_uri,
            run_id=run.info.run_id,
            metric="macro_f1",
            value=1.0,
            floor=0.0,
            min_delta=0.0,
            champion_metric=lambda version: 0.0,
        )
        return report["version"]

    return registered


def artifact_file(name: str, version: str, file_name: str) -> Path:
    """A file of the version's logged model in the artifact store itself (the suite's store)."""
    client = mlflow.MlflowClient()
    source = client.get_model_version(name, version).source
    if source.startswith("models:/"):  # an MLflow 3 logged model: models:/<model id>
        source = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    return next(Path(source.removeprefix("file://")).rglob(file_name))


def test_this_package_serving_code_is_reviewed() -> None:
    for path in (MODEL_ENTRY, SERVING_CODE):
        digest = file_sha256(path)
        assert digest in REVIEWED_CODE, (
            f"{path.name} changed: review it, then add {digest!r} to integrity.REVIEWED_CODE "
            "(keep the old entries: versions registered with them still load)."
        )


def test_the_digest_covers_names_and_bytes_not_bytecode(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("one")
    first = folder_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert folder_digest(tmp_path) == first
    (tmp_path / "a.txt").write_text("two")
    assert folder_digest(tmp_path) != first
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    assert folder_digest(tmp_path) != first


def test_registration_records_the_digest_and_the_cache_serves_the_model(register, tmp_path) -> None:
    name = "integrity_ok"
    version = register(name)
    tags = mlflow.MlflowClient().get_model_version(name, version).tags
    fetched = fetch_version(name, version, tmp_path)
    assert fetched.digest == tags[DIGEST_TAG] == folder_digest(fetched.path)
    assert Path(fetched.path).parent == tmp_path / name
    assert not [p for p in (tmp_path / name).iterdir() if p.name.startswith(".")]  # no staging
    again = fetch_version(name, version, tmp_path)  # reused, verified again
    assert again.path == fetched.path
    output = again.load().predict(FRAME)
    assert list(output.columns[:2]) == ["label", "probability"]


def test_a_changed_file_in_the_cache_is_refused_on_use(register, tmp_path) -> None:
    name = "integrity_cache"
    version = register(name)
    fetched = fetch_version(name, version, tmp_path)
    weights = next(Path(fetched.path).rglob("model.keras"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="do not match what was registered"):
        fetched.load()
    with pytest.raises(ModelIntegrityError, match="do not match what was registered"):
        fetch_version(name, version, tmp_path)


def test_a_changed_artifact_store_is_refused_and_nothing_is_cached(register, tmp_path) -> None:
    name = "integrity_store"
    version = register(name)
    spec = artifact_file(name, version, "spec.json")
    spec.write_text(spec.read_text().replace('"a"', '"evil"'))
    with pytest.raises(ModelIntegrityError, match="do not match what was registered"):
        fetch_version(name, version, tmp_path)
    assert not any((tmp_path / name).iterdir())  # the staging folder is gone too


def test_unreviewed_serving_code_never_runs(register, tmp_path, monkeypatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("KL_TEST_MARKER", str(marker))
    changed = tmp_path / "serving_code.py"
    changed.write_text(
        SERVING_CODE.read_text()
        + "\nimport os, pathlib\npathlib.Path(os.environ['KL_TEST_MARKER']).touch()\n"
    )
    name = "integrity_code"
    version = register(name, serving_code=changed)  # logging it ran it (our own process)
    marker.unlink()
    with pytest.raises(ModelIntegrityError, match="not a reviewed version"):
        fetch_version(name, version, tmp_path / "cache")
    assert not marker.exists()


def test_a_version_without_a_digest_is_refused(register, tmp_path) -> None:
    name = "integrity_untagged"
    version = register(name)
    mlflow.MlflowClient().delete_model_version_tag(name, version, DIGEST_TAG)
    with pytest.raises(ModelIntegrityError, match="has no content_sha256 tag"):
        fetch_version(name, version, tmp_path)


def test_a_half_written_cache_folder_is_never_used(register, tmp_path) -> None:
    """A killed download leaves only a hidden staging folder; the next fetch starts afresh."""
    name = "integrity_killed"
    version = register(name)
    fetched = fetch_version(name, version, tmp_path)
    final = Path(fetched.path)
    shutil.rmtree(final)
    (final.parent / f".{final.name}.killed").mkdir()  # what a kill mid-download leaves
    (final.parent / f".{final.name}.killed" / "MLmodel").write_text("half")
    again = fetch_version(name, version, tmp_path)
    assert again.path == fetched.path
    assert folder_digest(again.path) == again.digest

"""A CycloneDX SBOM of the environment: written by `make package`, logged with each model."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import mlflow
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from keras_lakehouse.platform import sbom

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def environment_sbom() -> dict:
    return sbom.environment_sbom()


def test_the_sbom_lists_every_dependency_with_its_version_and_purl(environment_sbom) -> None:
    assert (environment_sbom["bomFormat"], environment_sbom["specVersion"]) == ("CycloneDX", "1.6")
    components = {canonicalize_name(item["name"]): item for item in environment_sbom["components"]}
    assert components["tensorflow"]["version"] == "2.19.0"
    assert components["tensorflow"]["purl"] == "pkg:pypi/tensorflow@2.19.0"
    assert components["mlflow-skinny"]["purl"] == "pkg:pypi/mlflow-skinny@3.0.1"
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for line in declared["dependencies"] + declared["optional-dependencies"]["local"]:
        name = canonicalize_name(Requirement(line).name)
        version = metadata.version(name)
        assert components[name]["version"] == version, name
        assert components[name]["purl"] == f"pkg:pypi/{name}@{version}", name


def test_log_sbom_logs_it_as_an_artifact_of_the_active_run(tmp_path, mlflow_store) -> None:
    experiment = mlflow.create_experiment("sbom-tests", artifact_location=tmp_path.as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        assert sbom.log_sbom() is True
    logged = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/sbom.cdx.json")
    assert logged["bomFormat"] == "CycloneDX"
    assert any(item["name"] == "tensorflow" for item in logged["components"])


def test_each_run_of_one_process_reuses_the_sbom_until_packages_change(
    tmp_path, monkeypatch, mlflow_store
) -> None:
    """Every model run logs the SBOM; cyclonedx-py (seconds) runs again only when an installed
    distribution was added or removed since (a site-packages folder changed)."""
    site = tmp_path / "site-packages"
    site.mkdir()
    calls = []

    def listed(python=None):
        calls.append(python)
        return {"bomFormat": "CycloneDX", "components": [{"name": f"pkg{len(calls)}"}]}

    monkeypatch.setattr(sbom, "environment_sbom", listed)
    monkeypatch.setattr(sbom, "_site_folders", lambda: [site])
    sbom.reset_sbom_cache()
    experiment = mlflow.create_experiment("sbom-cache", artifact_location=tmp_path.as_uri())
    logged = []
    for step in range(3):
        if step == 2:
            (site / "newly_installed-1.0.dist-info").mkdir()  # pip install: the folder changes
        with mlflow.start_run(experiment_id=experiment) as run:
            assert sbom.log_sbom() is True
        logged.append(mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/sbom.cdx.json"))
    assert len(calls) == 2
    assert [item["components"][0]["name"] for item in logged] == ["pkg1", "pkg1", "pkg2"]
    sbom.reset_sbom_cache()


def test_without_cyclonedx_log_sbom_logs_nothing_and_says_why(
    tmp_path, monkeypatch, caplog, mlflow_store
) -> None:
    monkeypatch.setattr(sbom, "sbom_tool_available", lambda: False)
    logger = logging.getLogger("keras_lakehouse.platform.sbom")
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    monkeypatch.setattr(logger, "propagate", False)
    experiment = mlflow.create_experiment("sbom-absent", artifact_location=tmp_path.as_uri())
    with (
        caplog.at_level(logging.INFO, logger=logger.name),
        mlflow.start_run(experiment_id=experiment) as run,
    ):
        assert sbom.log_sbom() is False
    assert "No SBOM logged" in caplog.text
    assert "cyclonedx-bom is not installed" in caplog.text
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []
    with pytest.raises(RuntimeError, match="needs cyclonedx-bom"):
        sbom.environment_sbom()


def test_log_sbom_needs_an_active_run() -> None:
    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="Received: no active run"):
        sbom.log_sbom()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_package_writes_the_sbom_next_to_the_wheel(tmp_path) -> None:
    """`make package` on a copy of the project, with the project's .venv (never set up again)."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "kedro").is_file():
        pytest.skip(f"needs the project's virtual environment. Received: {venv}")
    for name in ("Makefile", "pyproject.toml", "README.md", "requirements.lock"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    ignored = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for folder in ("src", "conf", "runtime"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder, ignore=ignored)
    result = subprocess.run(
        ["make", "package", f"VENV={venv}", "-o", str(venv / ".installed")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = json.loads((tmp_path / "dist/sbom.cdx.json").read_text())
    assert written["bomFormat"] == "CycloneDX"
    purls = {item.get("purl") for item in written["components"]}
    assert f"pkg:pypi/tensorflow@{metadata.version('tensorflow')}" in purls
    assert len(list((tmp_path / "dist").glob("keras_lakehouse-*.whl"))) == 1

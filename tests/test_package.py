"""Packaging: the wheel and conf tarball of ``kedro package``, the entry point, and a run of the
installed wheel in a fresh virtual environment, outside the repository."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "keras_lakehouse"
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
QUIET_ENV = {
    "SPARK_LOCAL_IP": "127.0.0.1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_TELEMETRY": "false",
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str) -> set[str]:
    """Top-level module names imported by ``source``, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(source)
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and _is_type_checking(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    modules: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


# Outside Databricks only: the runtime there provides Spark and Delta (pyproject's `local` extra).
PROVIDED_BY_DATABRICKS = "local"


def declared_distributions() -> set[str]:
    """[project] dependencies and the ``local`` extra, plus what the extras they name explicitly
    (``pkg[extra]``) add."""
    declared: set[str] = set()
    project = PYPROJECT["project"]
    for line in [
        *project["dependencies"],
        *project["optional-dependencies"][PROVIDED_BY_DATABRICKS],
    ]:
        requirement = Requirement(line)
        declared.add(canonicalize_name(requirement.name))
        for extra_line in metadata.requires(requirement.name) or []:
            extra_requirement = Requirement(extra_line)
            marker = extra_requirement.marker
            if marker and any(marker.evaluate({"extra": e}) for e in requirement.extras):
                declared.add(canonicalize_name(extra_requirement.name))
    return declared


def test_every_third_party_import_is_a_declared_dependency() -> None:
    imported = set()
    for path in (PROJECT_ROOT / "src" / PACKAGE).rglob("*.py"):
        imported |= runtime_imports(path.read_text())
    third_party = imported - set(sys.stdlib_module_names) - {PACKAGE}
    providers = metadata.packages_distributions()
    declared = declared_distributions()

    undeclared = {
        module: providers.get(module, ["<not installed>"])
        for module in sorted(third_party)
        if not declared & {canonicalize_name(name) for name in providers.get(module, [])}
    }
    assert not undeclared, (
        "Expected every third-party module imported under src/keras_lakehouse to come from a "
        f"distribution in [project] dependencies. Received undeclared: {undeclared}"
    )


def test_runtime_imports_skip_type_checking_blocks() -> None:
    source = (
        "import os, numpy.linalg\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pandas\nfrom . import sibling\n"
    )
    assert runtime_imports(source) == {"os", "numpy", "typing"}


def test_console_script_is_the_packaged_main() -> None:
    from keras_lakehouse.__main__ import main

    assert PYPROJECT["project"]["scripts"] == {"keras-lakehouse": f"{PACKAGE}.__main__:main"}
    assert callable(main)


class _RecordingSession:
    """Stands in for KedroSession: records what the run command asks for, runs nothing."""

    def __init__(self, calls: dict) -> None:
        self.calls = calls

    def __enter__(self) -> _RecordingSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def run(self, **kwargs: object) -> dict:
        self.calls["run"] = kwargs
        return {}


# Kedro itself warns that `--pipeline` is deprecated; the entry point still takes it.
@pytest.mark.filterwarnings("ignore:Option '--pipeline' is deprecated")
@pytest.mark.parametrize(
    "pipeline_args",
    [["--pipeline", "ingestion"], ["--pipelines", "ingestion"], ["--pipelines=ingestion"]],
    ids=["--pipeline (deprecated)", "--pipelines", "--pipelines="],
)
def test_entry_point_takes_env_conf_source_pipeline_and_dotted_params(
    pipeline_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from keras_lakehouse.__main__ import main

    calls: dict = {}

    def create(cls, **kwargs):  # KedroSession.create's shape
        calls["create"] = kwargs
        return _RecordingSession(calls)

    monkeypatch.setattr(KedroSession, "create", classmethod(create))
    args = [
        "--env",
        "databricks",
        "--conf-source",
        str(PROJECT_ROOT / "conf"),
        *pipeline_args,
        "--params",
        "training.cnn.epochs=3,training.strategy=mirrored,serving.alias=challenger",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)

    assert exit_info.value.code == 0
    assert calls["create"]["env"] == "databricks"
    assert calls["create"]["conf_source"] == str((PROJECT_ROOT / "conf").resolve())
    assert calls["create"]["runtime_params"] == {
        "training": {"cnn": {"epochs": 3}, "strategy": "mirrored"},
        "serving": {"alias": "challenger"},
    }
    assert calls["run"]["pipeline_names"] == ["ingestion"]


# ---- the built wheel and conf tarball (built once per session by `built_package`) ------------


def _wheel_metadata(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


@pytest.mark.slow
def test_wheel_ships_every_module_of_the_package(built_package) -> None:
    source = built_package.project / "src"
    expected = {p.relative_to(source).as_posix() for p in (source / PACKAGE).rglob("*.py")}
    with zipfile.ZipFile(built_package.wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith(f"{PACKAGE}/")}
    assert expected - shipped == set(), "modules missing from the wheel"
    pipelines = {p.parent.name for p in (source / PACKAGE / "pipelines").glob("*/pipeline.py")}
    assert {"ingestion", "data_quality", "preprocessing", "training"} <= pipelines


@pytest.mark.slow
def test_wheel_declares_the_project_dependencies_tensorflow_included(built_package) -> None:
    message = Parser().parsestr(_wheel_metadata(built_package.wheel, "METADATA"))
    runtime = {
        canonicalize_name(Requirement(line).name)
        for line in message.get_all("Requires-Dist", [])
        if "extra ==" not in line
    }
    declared = {
        canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]
    }
    assert runtime == declared
    assert "tensorflow" in runtime
    # Installing the wheel on a Databricks cluster must not replace the runtime's Spark.
    assert not runtime & {"pyspark", "delta-spark"}
    local = {
        canonicalize_name(Requirement(line).name)
        for line in message.get_all("Requires-Dist", [])
        if f'extra == "{PROVIDED_BY_DATABRICKS}"' in line
    }
    assert local == {"pyspark", "delta-spark", "mlflow"}  # the runtime ships mlflow-skinny


@pytest.mark.slow
def test_wheel_console_script_is_main(built_package) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_wheel_metadata(built_package.wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == PYPROJECT["project"]["scripts"]


@pytest.mark.slow
def test_conf_tarball_is_a_kedro_conf_source(built_package) -> None:
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.settings import CONFIG_LOADER_ARGS

    with tarfile.open(built_package.conf) as archive:
        members = set(archive.getnames())
    assert {"conf/base/catalog.yml", "conf/base/parameters_ingestion.yml"} <= members
    assert not [m for m in members if m.startswith("conf/local/") and m.endswith(".yml")]

    loader = OmegaConfigLoader(conf_source=str(built_package.conf), **CONFIG_LOADER_ARGS)
    base_catalog = yaml.safe_load((built_package.project / "conf/base/catalog.yml").read_text())
    assert set(loader["catalog"]) == set(base_catalog)
    assert "ingestion" in loader["parameters"]


# ---- the installed wheel, run from outside the repository ----------------------------------


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: int) -> float:
    """Run ``command``; fail with its output when it fails. Returns its wall time."""
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed (exit {result.returncode}).\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return time.monotonic() - started


@pytest.mark.slow
def test_installed_wheel_runs_ingestion_outside_the_repo(
    built_package, pip_install, tmp_path: Path, record_property
) -> None:
    uv = Path(sys.executable).parent / "uv"
    assert uv.is_file(), f"Expected uv next to {sys.executable} (make setup installs it)."
    venv, workdir = tmp_path / "venv", tmp_path / "work"
    workdir.mkdir()
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env |= QUIET_ENV | {"PYSPARK_PYTHON": str(python), "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    lock = str(PROJECT_ROOT / "requirements.lock")
    conf = str(built_package.conf)
    create_venv = [str(uv), "venv", "--quiet", "--python", "3.11", str(venv)]
    sample_data = [str(python), "-m", f"{PACKAGE}.sample_data", "--output", "data/01_raw"]
    sample_data += ["--images-per-label", "10", "--texts-per-label", "40"]  # ingestion only
    # The console script, --env, the packaged conf, and a nested parameter that shows in the
    # counts. (Every flag of the entry point: test_entry_point_takes_env_conf_source_...)
    console_run = [str(venv / "bin" / "keras-lakehouse"), "--env", "local", "--conf-source", conf]
    console_run += ["--pipelines=ingestion", "--params", "ingestion.texts.max_text_chars=60"]

    timings = {"kedro package": built_package.seconds}
    timings["venv"] = _run(create_venv, cwd=tmp_path, env=env, timeout=120)
    started = time.monotonic()
    # The lock as constraints: the same versions as .venv, from uv's local cache.
    done = pip_install(
        python, ["-c", lock, f"{built_package.wheel}[{PROVIDED_BY_DATABRICKS}]"], env=env
    )
    assert done.returncode == 0, f"installing the wheel failed:\n{done.stderr[-6000:]}"
    timings["install"] = time.monotonic() - started
    location = subprocess.run(
        [str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(location).is_relative_to(venv), f"{PACKAGE} imported from {location}"
    _run(sample_data, cwd=workdir, env=env, timeout=300)

    timings["ingestion (console script)"] = _run(console_run, cwd=workdir, env=env, timeout=900)
    data = workdir / "data"
    for table in ("images_bronze", "images_quarantine", "texts_bronze", "texts_quarantine"):
        assert (data / "02_intermediate" / table / "_delta_log").is_dir(), f"no Delta table {table}"
    for modality in ("images", "texts"):
        counts = json.loads((data / f"08_reporting/{modality}_ingestion_counts.json").read_text())
        assert counts["raw"] == counts["bronze"] + counts["quarantine"] > 0
        assert counts["quarantine"] > 0  # the sample data's bad records
    counts = json.loads((data / "08_reporting/texts_ingestion_counts.json").read_text())
    assert counts["quarantine_by_reason"].get("text_too_long", 0) > 0  # the --params value

    record_property("timings_s", {k: round(v, 1) for k, v in timings.items()})
    print(f"timings (s): { {k: round(v, 1) for k, v in timings.items()} }")

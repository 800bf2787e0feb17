"""The target Databricks Runtime (runtime/databricks-runtime.toml) drives the bundle's
spark_version, the wheel's metadata and the local stack: a runtime upgrade is one edit there, and
these tests turn red where something no longer fits."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_FILE = PROJECT_ROOT / "runtime" / "databricks-runtime.toml"
RUNTIME = tomllib.loads(RUNTIME_FILE.read_text())
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
# Tools of the developer's machine, never installed on a cluster by the wheel.
DEV_ONLY = {"kedro-viz", "pytest", "pytest-cov", "ruff", "nbclient", "nbformat", "ipykernel"}
DEV_ONLY |= {"databricks-bundles", "databricks-sdk"}


def preinstalled() -> dict[str, str]:
    """The runtime's preinstalled packages: canonical name → version."""
    pins = {}
    for line in (RUNTIME_FILE.parent / RUNTIME["preinstalled"]).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


MAY_REPLACE = {canonicalize_name(name) for name in RUNTIME["wheel"]["may_replace"]}


def wheel_requirements() -> list[Requirement]:
    return [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# ---- the description itself ------------------------------------------------------------------
def test_the_runtime_description_is_complete_and_consistent() -> None:
    pins = preinstalled()
    assert len(pins) > 300, "the preinstalled list looks truncated"
    for name in ("tensorflow", "keras", "mlflow-skinny", "numpy", "pandas", "pyarrow"):
        assert name in pins, f"{name} missing from {RUNTIME['preinstalled']}"
    assert RUNTIME["spark_version_cpu"].startswith(RUNTIME["spark_version_gpu"].split("-")[0])
    assert minor(RUNTIME["spark"]) == RUNTIME["local_twin"]["pyspark"]
    assert RUNTIME["delta"] == RUNTIME["local_twin"]["delta_spark"]
    for name, reason in RUNTIME["wheel"]["may_replace"].items():
        assert canonicalize_name(name) in pins, name
        assert len(reason) > 20, f"{name}: say why the wheel may replace it"
    # The runtime's ML stack itself is never up for replacement.
    protected = {"tensorflow", "keras", "mlflow-skinny", "numpy", "pandas", "pyarrow", "protobuf"}
    assert not MAY_REPLACE & protected


# ---- the bundle ------------------------------------------------------------------------------
def test_the_bundle_runs_the_runtime_on_every_cluster() -> None:
    bundle = yaml.safe_load((PROJECT_ROOT / "databricks.yml").read_text())
    variables = bundle["variables"]
    assert variables["cpu_spark_version"]["default"] == RUNTIME["spark_version_cpu"]
    assert variables["gpu_spark_version"]["default"] == RUNTIME["spark_version_gpu"]
    for job in bundle["resources"]["jobs"].values():
        for cluster in job.get("job_clusters", []):
            assert cluster["new_cluster"]["spark_version"] in {
                "${var.cpu_spark_version}",
                "${var.gpu_spark_version}",
            }, cluster["job_cluster_key"]
    for target in bundle.get("targets", {}).values():
        for name in ("cpu_spark_version", "gpu_spark_version"):
            assert name not in (target.get("variables") or {}), "a target overrides the runtime"


# ---- the wheel's metadata --------------------------------------------------------------------
def test_requires_python_admits_the_runtime_and_the_local_python() -> None:
    allowed = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert RUNTIME["python"] in allowed
    assert f"{sys.version_info.major}.{sys.version_info.minor}.0" in allowed


def test_every_dependency_admits_the_version_the_runtime_provides() -> None:
    pins = preinstalled()
    refused = {
        str(requirement): pins[canonicalize_name(requirement.name)]
        for requirement in wheel_requirements()
        if canonicalize_name(requirement.name) in pins
        and canonicalize_name(requirement.name) not in MAY_REPLACE
        and not requirement.specifier.contains(pins[canonicalize_name(requirement.name)])
    }
    assert not refused, f"The wheel would replace the runtime's versions: {refused}"


def test_dev_tools_and_local_spark_are_not_runtime_dependencies() -> None:
    names = {canonicalize_name(requirement.name) for requirement in wheel_requirements()}
    assert not names & DEV_ONLY
    assert not names & {"pyspark", "delta-spark", "mlflow"}  # the runtime's own, or local only


# ---- the local stack -------------------------------------------------------------------------
def test_the_local_twin_runs_the_runtime_spark_and_delta_lines() -> None:
    from keras_lakehouse.platform.jars import DELTA_JARS

    assert minor(metadata.version("pyspark")) == RUNTIME["local_twin"]["pyspark"]
    assert metadata.version("delta-spark") == RUNTIME["delta"]
    # The jars the local session runs on (pinned in keras_lakehouse/jars.py) are that version too.
    assert (f"delta-spark_{RUNTIME['scala']}", RUNTIME["delta"]) in {
        (jar.artifact, jar.version) for jar in DELTA_JARS
    }


def wheel_closure() -> set[str]:
    """The installed distributions the wheel (with its `local` extra) pulls in, transitively."""
    seen: set[str] = set()
    todo = [(canonicalize_name("keras_lakehouse"), {"local"})]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            environment = {"extra": ""}
            if marker and not any(
                marker.evaluate(environment | {"extra": extra}) for extra in extras | {""}
            ):
                continue
            todo.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return seen


def test_the_local_stack_installs_the_runtime_versions() -> None:
    """Every package the runtime provides and the project uses runs locally at the runtime's
    version (the lock is resolved against the preinstalled list): TensorFlow, Keras, MLflow,
    numpy, pandas, pyarrow, … behave here as on the cluster."""
    pins = preinstalled()
    closure = wheel_closure()
    assert {"tensorflow", "keras", "mlflow-skinny", "kedro"} <= closure
    different = {
        name: (metadata.version(name), pins[name])
        for name in sorted(closure & set(pins) - MAY_REPLACE)
        if Version(metadata.version(name)) != Version(pins[name])
    }
    assert not different, f"installed vs runtime: {different}"


def test_the_lock_is_universal_and_hashed_and_make_requires_the_hashes() -> None:
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+(.*)$", lock, flags=re.MULTILINE)
    assert len(pins) > 100
    for name, rest in pins:
        assert rest.rstrip().endswith("\\"), f"{name} has no hash in requirements.lock"
    assert lock.count("--hash=sha256:") >= len(pins)
    # One resolution for every supported Python, not just the machine's.
    assert "python_full_version < '3.13'" in lock
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "--require-hashes requirements.lock" in makefile


# ---- the wheel on the runtime's Python --------------------------------------------------------
def runtime_python() -> str:
    """A working Python of the runtime's minor version on this machine (pyenv, or the PATH; a
    pyenv shim of a version that is not selected does not count)."""
    wanted = minor(RUNTIME["python"])
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{wanted}.*/bin/python")))
    candidates += [shutil.which(f"python{wanted}") or ""]
    for path in filter(None, candidates):
        probe = subprocess.run(
            [path, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == wanted:
            return path
    pytest.fail(
        f"No Python {wanted} (the runtime's) on this machine: install python{wanted} "
        "or a pyenv version, to check that the wheel installs there."
    )


def resolve_wheel(wheel: Path, python: Path, pins: dict[str, str], folder: Path):
    """``uv pip compile`` of the wheel for ``python`` with ``pins`` as constraints."""
    uv = Path(sys.executable).parent / "uv"
    constraints = folder / f"constraints-{len(list(folder.glob('constraints-*')))}.txt"
    constraints.write_text("\n".join(f"{name}=={version}" for name, version in pins.items()))
    return subprocess.run(
        [str(uv), "pip", "compile", "--python", str(python), "--quiet",
         "--no-header", "--no-annotate", "-c", str(constraints), "-"],
        input=f"keras_lakehouse @ {wheel.as_uri()}\n",
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def resolved_versions(result: subprocess.CompletedProcess) -> dict[str, str]:
    pairs = (line.split("==", 1) for line in result.stdout.splitlines() if "==" in line)
    return {canonicalize_name(name): version.strip() for name, version in pairs}


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    """A virtual environment of the runtime's Python; returns its interpreter."""
    uv = Path(sys.executable).parent / "uv"
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run(
        [str(uv), "venv", "--quiet", "--python", runtime_python(), str(venv)], check=True
    )
    return venv / "bin" / "python"


@pytest.mark.slow
def test_the_wheel_installs_on_the_runtime_without_replacing_its_packages(
    built_package, runtime_venv, tmp_path: Path
) -> None:
    """In a virtual environment of the runtime's Python, the wheel resolves against the
    runtime's preinstalled versions pinned as constraints (less the allowed upgrades): it fits
    without replacing any of them, and brings what the runtime lacks."""
    pins = {name: version for name, version in preinstalled().items() if name not in MAY_REPLACE}
    resolved = resolve_wheel(built_package.wheel, runtime_venv, pins, tmp_path)
    assert resolved.returncode == 0, (
        "The wheel does not install on the runtime without replacing its packages:\n"
        + resolved.stderr[-4000:]
    )
    versions = resolved_versions(resolved)
    all_pins = preinstalled()
    replaced = {
        name: (all_pins[name], version)
        for name, version in versions.items()
        if name in all_pins and Version(version) != Version(all_pins[name])
    }
    assert set(replaced) <= MAY_REPLACE, replaced
    assert versions["tensorflow"] == pins["tensorflow"]
    assert versions["mlflow-skinny"] == pins["mlflow-skinny"]
    brought = set(versions) - set(all_pins)
    assert {"kedro", "great-expectations", "kedro-datasets"} <= brought
    assert not brought & (DEV_ONLY | {"pyspark", "delta-spark", "mlflow"})


@pytest.mark.slow
def test_on_a_runtime_without_tensorflow_the_wheel_brings_it(
    built_package, runtime_venv, tmp_path: Path
) -> None:
    """Databricks Runtime 19 ML ships no TensorFlow or Keras: the wheel must bring them."""
    dropped = {"tensorflow", "keras", "tf-keras", "tensorboard", "tensorflow-estimator"}
    pins = {
        name: version
        for name, version in preinstalled().items()
        if name not in MAY_REPLACE | dropped
    }
    resolved = resolve_wheel(built_package.wheel, runtime_venv, pins, tmp_path)
    assert resolved.returncode == 0, resolved.stderr[-4000:]
    assert {"tensorflow", "keras"} <= set(resolved_versions(resolved))


@pytest.mark.slow
def test_a_runtime_the_wheel_does_not_fit_fails_the_resolution(
    built_package, runtime_venv, tmp_path: Path
) -> None:
    """The check can fail: a runtime with pandas 1.5 (below the wheel's range) does not resolve."""
    pins = {name: version for name, version in preinstalled().items() if name not in MAY_REPLACE}
    resolved = resolve_wheel(
        built_package.wheel, runtime_venv, pins | {"pandas": "1.5.3"}, tmp_path
    )
    assert resolved.returncode != 0
    assert "pandas" in resolved.stderr

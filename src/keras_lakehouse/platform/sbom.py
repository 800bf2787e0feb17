"""A CycloneDX SBOM of the Python environment: written by ``make package``, logged with models.

Built by ``cyclonedx-py environment`` (the ``cyclonedx-bom`` package, a dev dependency): where it
is not installed (a Databricks cluster), ``log_sbom`` logs nothing and says so.

``python -m keras_lakehouse.platform.sbom --output dist/sbom.cdx.json`` writes the SBOM of the
running interpreter's environment (what ``make package`` runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ARTIFACT = "sbom.cdx.json"
TOOL_MODULE = "cyclonedx_py"  # the cyclonedx-bom distribution
TIMEOUT_SECONDS = 300


def sbom_tool_available() -> bool:
    """Tell whether ``cyclonedx-py`` (package cyclonedx-bom) can run in this interpreter."""
    return importlib.util.find_spec(TOOL_MODULE) is not None


def environment_sbom(python: str | None = None) -> dict[str, Any]:
    """The CycloneDX JSON SBOM of the environment of ``python`` (default: this interpreter).

    Every installed distribution is a component with its version and purl
    (``pkg:pypi/tensorflow@2.19.0``).

    Raises:
        RuntimeError: cyclonedx-bom is not installed here, or ``cyclonedx-py`` failed.
    """
    if not sbom_tool_available():
        raise RuntimeError(
            "Building an SBOM needs cyclonedx-bom (a dev dependency: `make setup`). "
            f"Received: no module {TOOL_MODULE} in {sys.executable}."
        )
    command = [sys.executable, "-m", TOOL_MODULE, "environment", "--output-format", "JSON"]
    command += ["--output-file", "-", python or sys.executable]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"cyclonedx-py environment failed (exit {result.returncode}) for "
            f"{python or sys.executable}:\n{result.stderr[-4000:]}"
        )
    return json.loads(result.stdout)


# One process logs the SBOM with every model it trains: it is listed again only when a
# site-packages folder changed (a distribution installed or removed) since it was last listed.
_listed: dict[str, Any] = {}


def _site_folders() -> list[Path]:
    return [
        Path(entry)
        for entry in sys.path
        if entry.endswith(("site-packages", "dist-packages")) and Path(entry).is_dir()
    ]


def current_sbom() -> dict[str, Any]:
    """``environment_sbom()`` of this interpreter, listed once per state of its site-packages."""
    stamp = tuple((str(folder), folder.stat().st_mtime_ns) for folder in _site_folders())
    if _listed.get("stamp") != stamp:
        _listed.update(stamp=stamp, sbom=environment_sbom())
    return _listed["sbom"]


def reset_sbom_cache() -> None:
    """Forget the listed SBOM: the next ``log_sbom`` lists the environment again."""
    _listed.clear()


def log_sbom() -> bool:
    """Log the environment's SBOM as the artifact ``sbom.cdx.json`` of the active MLflow run.

    Returns:
        True when logged; False, with a log line saying why, when cyclonedx-bom is not installed
        (e.g. on a Databricks cluster).

    Raises:
        RuntimeError: No MLflow run is active, or ``cyclonedx-py`` failed.
    """
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_sbom() logs into the active MLflow run. Received: no active run.")
    if not sbom_tool_available():
        logger.warning(
            "No SBOM logged with run %s: cyclonedx-bom is not installed in %s (a dev "
            "dependency; `make package` writes dist/%s).",
            run.info.run_id,
            sys.executable,
            ARTIFACT,
        )
        return False
    mlflow.log_dict(current_sbom(), ARTIFACT)
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m keras_lakehouse.platform.sbom --output dist/sbom.cdx.json [--python PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--python", help="the interpreter whose environment is listed")
    args = parser.parse_args(argv)
    sbom = environment_sbom(args.python)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(sbom, indent=2) + "\n")


if __name__ == "__main__":
    main()

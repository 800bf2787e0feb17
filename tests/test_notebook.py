"""notebooks/exploration.ipynb runs headless, top to bottom, in a kernel of the project's own
interpreter, on a project copy where the default pipeline ran on the sample data."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "exploration.ipynb"
KERNEL_NAME = "keras-lakehouse-test"
CELL_TIMEOUT_S = 600
MODELS = ("cnn", "lstm")
TABLES = {
    "images_bronze": "data/02_intermediate/images_bronze",
    "texts_bronze": "data/02_intermediate/texts_bronze",
    "images_silver@spark": "data/05_model_input/images_silver",
    "texts_silver@spark": "data/05_model_input/texts_silver",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def executed(trained_project, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook after a headless run, its cells by tag, and the project it explored."""
    project, _ = trained_project
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    probe = nbformat.v4.new_code_cell(
        "import sys\nprint(sys.prefix)", metadata={"tags": ["interpreter"]}
    )
    notebook.cells.insert(0, probe)

    work = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(
        notebook,
        km=_kernel_manager(work / "kernels"),
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        # The kernel starts outside any project: the notebook must find its project by itself.
        resources={"metadata": {"path": str(work)}},
    )
    env = os.environ | {
        "KERAS_LAKEHOUSE_PROJECT": str(project),
        # Spark's scratch space apart from the test session's (the kernel runs its own Spark).
        "SPARK_LOCAL_DIRS": str(work / "spark-local"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    try:
        client.execute(env=env)
    except CellExecutionError as error:
        pytest.fail(f"The notebook failed:\n{ANSI.sub('', str(error))[-6000:]}")
    finally:
        nbformat.write(notebook, work / "exploration.executed.ipynb")

    cells = {tag: cell for cell in notebook.cells for tag in cell.metadata.get("tags", [])}
    return {"cells": cells, "project": project, "notebook": notebook}


def test_notebook_outputs_are_cleared_in_the_repository() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"Clear the outputs of: {cell.source[:60]!r}"
            assert cell.execution_count is None


def test_kernel_runs_the_project_interpreter(executed) -> None:
    assert _text(executed["cells"]["interpreter"]).strip() == sys.prefix


def test_every_cell_ran_without_error(executed) -> None:
    for cell in executed["notebook"].cells:
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{cell.source[:60]!r}: {errors}"
            assert cell.execution_count is not None, f"Not run: {cell.source[:60]!r}"


def test_tables_come_from_the_explored_project(executed, spark) -> None:
    text = _text(executed["cells"]["tables"])
    for name, path in TABLES.items():
        rows = spark.read.format("delta").load(str(executed["project"] / path)).count()
        assert f"{name}: {rows} rows" in text, text


def test_sample_images_and_text_lengths_are_plotted(executed) -> None:
    for tag in ("sample-images", "text-lengths", "training-curves"):
        pictures = _pngs(executed["cells"][tag])
        assert len(pictures) == 1, f"{tag}: {len(pictures)} PNG outputs"
        assert pictures[0][:8] == b"\x89PNG\r\n\x1a\n"
        assert len(pictures[0]) > 5_000, f"{tag}: the picture looks empty"
    lengths = _text(executed["cells"]["text-lengths"])
    for label in ("cooking", "sports", "technology"):
        assert label in lengths, lengths


def test_latest_metrics_are_shown(executed) -> None:
    project: Path = executed["project"]
    cell = executed["cells"]["metrics"]
    table = _text(cell, output_types=("execute_result",))
    notes = _text(cell, output_types=("stream",))
    for model in MODELS:
        shown = _numbers_on_row(table, model)
        training = json.loads(
            (project / f"data/08_reporting/training/{model}_metrics.json").read_text()
        )
        assert _contains(shown, training["test_accuracy"]), f"{model}: {table}"

        evaluation_file = project / f"data/08_reporting/evaluation/{model}_metrics.json"
        if evaluation_file.exists():
            evaluation = json.loads(evaluation_file.read_text())
            assert _contains(shown, evaluation["accuracy"]), f"{model}: {table}"
            assert f"{model}_evaluation is not available" not in notes
        else:
            assert f"Note: {model}_evaluation is not available yet" in notes, notes


# ---- helpers -------------------------------------------------------------------------------------


def _kernel_manager(kernels: Path):
    """A kernel of this interpreter (the project's .venv), whatever kernels Jupyter knows."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = kernels / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def _text(cell, output_types: tuple[str, ...] = ("stream", "execute_result")) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type not in output_types:
            continue
        if output.output_type == "stream":
            parts.append(output.text)
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return ANSI.sub("", "".join(parts))


def _pngs(cell) -> list[bytes]:
    return [
        base64.b64decode(output.data["image/png"])
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]


def _numbers_on_row(table: str, row: str) -> list[float]:
    """The numbers of a row of a printed DataFrame (pandas wraps wide ones into blocks)."""
    lines = [line for line in table.splitlines() if line.split()[:1] == [row]]
    assert lines, f"Expected a row {row!r} in:\n{table}"
    return [float(value) for value in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", " ".join(lines))]


def _contains(shown: list[float], value: float) -> bool:
    """``value`` is among ``shown`` as the notebook rounds it (4 decimals)."""
    return any(math.isclose(number, round(value, 4), abs_tol=1e-4) for number in shown)

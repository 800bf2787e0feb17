"""Start-up cost: building the pipelines loads none of the heavy libraries a node may need.

Every Kedro command (``kedro run --pipelines=ingestion``, ``kedro registry list``, ``kedro viz``,
``python -m keras_lakehouse``) imports ``settings.py`` and every pipeline's nodes. TensorFlow/Keras,
Great Expectations, MLflow and matplotlib take tens of seconds to import, so the modules that use
them import them inside the functions that need them (see ``HEAVY``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "great_expectations", "mlflow", "matplotlib")
STAGES = ("ingestion", "data_quality", "preprocessing", "training", "evaluation", "inference")

PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from kedro.framework.startup import bootstrap_project

    bootstrap_project(Path.cwd())
    from kedro.framework.project import pipelines

    import keras_lakehouse.settings  # noqa: F401 - what every Kedro command imports

    built = {name: len(pipeline.nodes) for name, pipeline in pipelines.items()}
    heavy = sorted(name for name in sys.argv[1:] if name in sys.modules)
    print(json.dumps({"pipelines": built, "heavy": heavy}))
    """
)


def test_building_every_pipeline_imports_no_heavy_library() -> None:
    """In a fresh interpreter, as a Kedro command starts: the project bootstrapped, every
    registered pipeline built, the settings (and so the hooks) imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(STAGES) | {"__default__"} <= set(probe["pipelines"]), probe["pipelines"]
    assert all(probe["pipelines"][name] for name in STAGES), probe["pipelines"]
    assert probe["heavy"] == [], (
        "Expected building the pipelines and importing settings.py to load none of "
        f"{list(HEAVY)} (import them inside the functions that use them). Received: "
        f"{probe['heavy']} in sys.modules. `python -X importtime -c '...'` shows which module "
        "imported them."
    )


@pytest.fixture(scope="module")
def registered_nodes() -> list:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    return sorted(
        {node for name, pipeline in pipelines.items() for node in pipeline.nodes},
        key=lambda node: node.name,
    )


def test_every_node_function_has_annotations_that_resolve(registered_nodes: list) -> None:
    """Kedro reads each node function's type hints (``typing.get_type_hints``) to build typed
    ``params:`` inputs; a hint that does not resolve at run time (a name imported only under
    ``TYPE_CHECKING``) makes it skip the node silently, which then gets a plain dict."""
    assert registered_nodes
    unresolved = {}
    for node in registered_nodes:
        try:
            typing.get_type_hints(node.func)
        except Exception as error:  # any failure is one Kedro would swallow
            unresolved[node.name] = f"{type(error).__name__}: {error}"
    assert not unresolved, (
        "Expected every node function's annotations to resolve at run time (use Any for "
        f"lazily imported types). Received: {unresolved}"
    )

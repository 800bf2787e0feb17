"""databricks.yml (Databricks Asset Bundle), checked offline against the project: the tasks run
registered pipelines in the order their datasets require, every crossing dataset is persisted,
and the entry point exists in the built wheel. (`databricks bundle validate` needs a workspace.)"""

from __future__ import annotations

import configparser
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "keras_lakehouse"
BUNDLE = yaml.safe_load((PROJECT_ROOT / "databricks.yml").read_text())
VARIABLES = {name: spec.get("default") for name, spec in BUNDLE.get("variables", {}).items()}
JOBS = BUNDLE["resources"]["jobs"]
TRAINING_JOB, INFERENCE_JOB = "keras_lakehouse", "keras_lakehouse_inference"
TASKS = [(job, task) for job, spec in JOBS.items() for task in spec["tasks"]]
TASK_IDS = [f"{job}.{task['task_key']}" for job, task in TASKS]
GPU_CLUSTER, CPU_CLUSTER = "gpu_single_node", "spark_cpu"


def resolve(value: object) -> object:
    """The value with ``${var.x}`` replaced by the variables' defaults (as the CLI would)."""
    if not isinstance(value, str):
        return value
    resolved = re.sub(r"\$\{var\.(\w+)\}", lambda m: str(VARIABLES[m.group(1)]), value)
    return resolved if resolved == value else resolve(resolved)


def task_options(task: dict) -> dict[str, str]:
    """The wheel task's ``--option value`` / ``--option=value`` parameters, resolved."""
    arguments = [str(resolve(a)) for a in task["python_wheel_task"].get("parameters", [])]
    options: dict[str, str] = {}
    index = 0
    while index < len(arguments):
        name, equals, value = arguments[index].partition("=")
        assert name.startswith("--"), f"Expected an --option. Received: {arguments[index]!r}"
        if not equals:
            index += 1
            value = arguments[index]
        assert name not in options, f"{name} given twice in {task['task_key']}"
        options[name] = value
        index += 1
    return options


def closure(edges: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Transitive closure of a set of (before, after) edges."""
    reach = set(edges)
    while True:
        extra = {(a, d) for a, b in reach for c, d in reach if b == c} - reach
        if not extra:
            return reach
        reach |= extra


def base_name(dataset: str) -> str:
    """A transcoded dataset's shared name: ``images_silver@spark`` → ``images_silver``."""
    return dataset.split("@")[0]


@pytest.fixture(scope="module")
def pipelines() -> dict:
    from kedro.framework.project import configure_project

    configure_project(PACKAGE)
    from keras_lakehouse.pipeline_registry import register_pipelines

    return register_pipelines()


def test_bundle_has_a_default_dev_target_and_a_prod_target() -> None:
    targets = BUNDLE["targets"]
    assert targets["dev"]["mode"] == "development"
    assert targets["dev"]["default"] is True
    assert targets["prod"]["mode"] == "production"
    assert BUNDLE["bundle"]["name"] == PACKAGE


def test_artifact_is_the_kedro_package_wheel_that_every_task_installs() -> None:
    (artifact,) = BUNDLE["artifacts"].values()
    assert artifact["type"] == "whl"
    assert (PROJECT_ROOT / artifact["path"]).resolve() == PROJECT_ROOT
    assert artifact["build"] == "make package"
    recipe = re.search(r"^package:.*\n((?:\t.*\n)+)", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert recipe, "Expected a `package` target in the Makefile"
    assert "kedro package" in recipe.group(1)
    for _, task in TASKS:
        wheels = [library["whl"] for library in task["libraries"] if "whl" in library]
        # Relative to databricks.yml; `kedro package` writes the wheel into dist/.
        assert [(PROJECT_ROOT / w).resolve() for w in wheels] == [PROJECT_ROOT / "dist/*.whl"]
        assert task["python_wheel_task"]["package_name"] == PACKAGE


@pytest.mark.parametrize(("job", "task"), TASKS, ids=TASK_IDS)
def test_task_runs_a_registered_pipeline_with_env_databricks_and_the_synced_conf(
    job: str, task: dict, pipelines: dict
) -> None:
    options = task_options(task)
    assert options["--pipelines"] in pipelines, (
        f"Expected task {task['task_key']} of {job} to name a registered pipeline. "
        f"Received: {options['--pipelines']!r}; registered: {sorted(pipelines)}"
    )
    assert options["--env"] == "databricks"
    assert options["--conf-source"] == "${workspace.file_path}/conf"
    assert (PROJECT_ROOT / "conf" / "databricks").is_dir()


def test_training_job_runs_the_default_pipeline_and_inference_runs_alone(pipelines) -> None:
    stages = [task_options(t)["--pipelines"] for j, t in TASKS if j == TRAINING_JOB]
    assert len(stages) == len(set(stages))
    missing = [stage for stage in [*stages, "inference"] if stage not in pipelines]
    assert not missing, f"Pipelines named by the bundle but not registered: {missing}"
    jobs_nodes = {node.name for stage in stages for node in pipelines[stage].nodes}
    assert jobs_nodes == {node.name for node in pipelines["__default__"].nodes}
    assert stages[-1] == "evaluation"

    (inference_task,) = JOBS[INFERENCE_JOB]["tasks"]
    assert task_options(inference_task)["--pipelines"] == "inference"
    assert "inference" not in stages


def _needed_edges(pipelines: dict, stages: list[str]) -> dict[tuple[str, str], set[str]]:
    """(producer, consumer) stage pairs and the datasets the consumer reads from the producer."""
    needed = {}
    for producer in stages:
        produced = {base_name(d) for d in pipelines[producer].all_outputs()}
        for consumer in stages:
            read = {d for d in pipelines[consumer].inputs() if base_name(d) in produced}
            if producer != consumer and read:
                needed[(producer, consumer)] = read
    return needed


def test_task_dependencies_follow_the_pipeline_graph(pipelines) -> None:
    tasks = {t["task_key"]: t for j, t in TASKS if j == TRAINING_JOB}
    stage = {key: task_options(task)["--pipelines"] for key, task in tasks.items()}
    declared = {
        (stage[dependency["task_key"]], stage[key])
        for key, task in tasks.items()
        for dependency in task.get("depends_on", [])
    }
    missing = [s for s in stage.values() if s not in pipelines]
    assert not missing, f"Pipelines named by the bundle but not registered: {missing}"
    needed = _needed_edges(pipelines, list(stage.values()))

    uncovered = {edge: needed[edge] for edge in needed if edge not in closure(declared)}
    assert not uncovered, f"Tasks read datasets of tasks they do not wait for: {uncovered}"
    unneeded = declared - closure(needed)
    assert not unneeded, f"depends_on edges that no dataset requires: {unneeded}"
    assert ("ingestion", "data_quality") in declared  # the graph is not trivially empty


def test_datasets_that_cross_tasks_are_persisted(pipelines) -> None:
    stages = [task_options(t)["--pipelines"] for j, t in TASKS if j == TRAINING_JOB]
    missing = [s for s in stages if s not in pipelines]
    assert not missing, f"Pipelines named by the bundle but not registered: {missing}"
    base_catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    databricks_catalog: dict = {}
    for path in sorted((PROJECT_ROOT / "conf/databricks").glob("**/catalog*.yml")):
        databricks_catalog |= yaml.safe_load(path.read_text()) or {}

    crossing = set()
    for (producer, _), read in _needed_edges(pipelines, stages).items():
        written = {d for d in pipelines[producer].all_outputs() if base_name(d) in read}
        crossing |= set(read) | written
    assert crossing
    not_persisted = sorted(d for d in crossing if d not in base_catalog)
    assert not not_persisted, f"In-memory datasets cannot cross tasks: {not_persisted}"
    in_memory = sorted(
        name
        for name in crossing
        if "MemoryDataset" in str((databricks_catalog.get(name) or {}).get("type", ""))
    )
    assert not in_memory, f"conf/databricks makes crossing datasets in-memory: {in_memory}"


def _clusters(job: str) -> dict[str, dict]:
    return {c["job_cluster_key"]: c["new_cluster"] for c in JOBS[job]["job_clusters"]}


def test_training_runs_on_a_single_node_gpu_ml_cluster_and_the_rest_on_cpu() -> None:
    for job, task in TASKS:
        is_training = task_options(task)["--pipelines"] == "training"
        assert task["job_cluster_key"] == (GPU_CLUSTER if is_training else CPU_CLUSTER)
        cluster = _clusters(job)[task["job_cluster_key"]]
        spark_version = str(resolve(cluster["spark_version"]))
        assert ("-gpu-ml-" in spark_version) is is_training, spark_version
    gpu = _clusters(TRAINING_JOB)[GPU_CLUSTER]
    assert gpu["num_workers"] == 0
    assert gpu["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    assert gpu["spark_conf"]["spark.master"].startswith("local[")
    assert gpu["custom_tags"]["ResourceClass"] == "SingleNode"
    assert resolve(gpu["node_type_id"])


def test_every_cluster_exports_the_variables_conf_databricks_reads() -> None:
    text = "\n".join(p.read_text() for p in (PROJECT_ROOT / "conf/databricks").glob("**/*.yml"))
    references = re.findall(r"\$\{env:(KL_\w+)(,?)", text)
    required = {name for name, comma in references if not comma}
    known = {name for name, _ in references}
    assert {"KL_CATALOG", "KL_SCHEMA"} <= required
    for job in JOBS:
        for key, cluster in _clusters(job).items():
            exported = set(cluster.get("spark_env_vars", {}))
            assert required <= exported, f"{job}.{key} does not set {required - exported}"
            assert exported <= known, f"{job}.{key} sets unread {exported - known}"
            assert cluster["spark_env_vars"]["KL_CATALOG"] == "${var.catalog}"
            assert cluster["spark_env_vars"]["KL_SCHEMA"] == "${var.schema}"


@pytest.mark.parametrize("job", list(JOBS))
def test_job_parameters_are_valid_kedro_runtime_params(job: str) -> None:
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.params import validate_parameters
    from keras_lakehouse.settings import CONFIG_LOADER_ARGS

    defaults = {p["name"]: str(p["default"]) for p in JOBS[job].get("parameters", [])}
    param_strings = {task_options(task)["--params"] for task in JOBS[job]["tasks"]}
    assert len(param_strings) == 1, "every task of a job gets the same runtime params"
    (params,) = param_strings
    referenced = re.findall(r"\{\{job\.parameters\.(\w+)\}\}", params)
    assert set(referenced) == set(defaults), "every job parameter is used, and only those"

    # As Kedro's --params parses it, with the job parameters' defaults filled in.
    filled = re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: defaults[m.group(1)], params)
    runtime_params = OmegaConf.to_container(OmegaConf.from_dotlist(filled.split(",")))
    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    base = loader["parameters"]
    for item in filled.split(","):
        node = base
        for key in item.partition("=")[0].split("."):
            assert isinstance(node, dict), f"{item}: no such parameter in conf"
            assert key in node, f"{item}: no such parameter in conf"
            node = node[key]
    merged = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        runtime_params=runtime_params,
        **CONFIG_LOADER_ARGS,
    )["parameters"]
    validate_parameters(merged)


@pytest.mark.slow
def test_entry_point_is_a_console_script_of_the_built_wheel(built_package) -> None:
    with zipfile.ZipFile(built_package.wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(member).decode())
        shipped = set(archive.namelist())
    scripts = dict(entry_points["console_scripts"])
    for _, task in TASKS:
        entry_point = task["python_wheel_task"]["entry_point"]
        assert entry_point in scripts, f"{entry_point!r} not in the wheel's {scripts}"
        module, _, function = scripts[entry_point].partition(":")
        assert f"{module.replace('.', '/')}.py" in shipped
        assert function == "main"

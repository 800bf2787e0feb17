"""databricks.yml (Databricks Asset Bundle), checked offline: every target's resources fit
Databricks' published bundle model (databricks-bundles; a misspelt field fails), the bundle owns
its schema, Volume, experiment and registered models with their grants, and against the project:
the tasks run registered pipelines in the order their datasets require, every crossing dataset is
persisted, and the entry point exists in the built wheel. The opt-in Lakehouse Monitoring monitor
(resources/monitoring.yml) fits the model too, in every target, and profiles the predictions table
through the columns the inference pipeline writes. (`databricks bundle validate` needs a
workspace.)"""

from __future__ import annotations

import configparser
import copy
import importlib.util
import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf


def _load_sibling(name: str):
    """tests/<name>.py as a module (the suite imports in importlib mode: no sys.path entry)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bundle_schema = _load_sibling("bundle_schema")
BundleSchemaError = bundle_schema.BundleSchemaError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "keras_lakehouse"
BUNDLE = bundle_schema.load_bundle(PROJECT_ROOT / "databricks.yml")
# The Lakehouse Monitoring monitor of the predictions table: opt-in (databricks.yml's commented
# `include`), validated here as if it were included.
MONITORING_FILE = "resources/monitoring.yml"
MONITORED = bundle_schema.load_bundle(PROJECT_ROOT / "databricks.yml", include=[MONITORING_FILE])
VARIABLES = {name: spec.get("default") for name, spec in BUNDLE.get("variables", {}).items()}
JOBS = BUNDLE["resources"]["jobs"]
TRAINING_JOB, INFERENCE_JOB = "keras_lakehouse", "keras_lakehouse_inference"
TASKS = [(job, task) for job, spec in JOBS.items() for task in spec["tasks"]]
TASK_IDS = [f"{job}.{task['task_key']}" for job, task in TASKS]
GPU_CLUSTER, GPU_MULTI_NODE, CPU_CLUSTER = "gpu_single_node", "gpu_multi_node", "spark_cpu"
# What `--var service_principal=...` gives prod (it has no default: prod must be told).
PROD_VARS = {"service_principal": "00000000-0000-0000-0000-000000000000"}
TARGET_VARS = {"prod": PROD_VARS}
# Who deploys a target: prod from CI as the principal it runs as (the only identity that may deploy
# a monitor there), dev as the developer.
TARGET_USERS = {"prod": PROD_VARS["service_principal"]}
TELEMETRY_OFF = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_TELEMETRY": "false",
}


def view(target: str, bundle: dict = BUNDLE) -> dict:
    """The bundle as the CLI resolves it for a target (tests/bundle_schema.py), deployed by
    TARGET_USERS."""
    user = TARGET_USERS.get(target, bundle_schema.DEFAULT_USER)
    return bundle_schema.target_view(bundle, target, TARGET_VARS.get(target), user)


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
        assert resolve(task["job_cluster_key"]) == (GPU_CLUSTER if is_training else CPU_CLUSTER)
        cluster = _clusters(job)[str(resolve(task["job_cluster_key"]))]
        spark_version = str(resolve(cluster["spark_version"]))
        assert ("-gpu-ml-" in spark_version) is is_training, spark_version
    gpu = _clusters(TRAINING_JOB)[GPU_CLUSTER]
    assert gpu["num_workers"] == 0
    assert gpu["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    assert gpu["spark_conf"]["spark.master"].startswith("local[")
    assert gpu["custom_tags"]["ResourceClass"] == "SingleNode"
    assert resolve(gpu["node_type_id"])


@pytest.mark.parametrize("target", list(BUNDLE["targets"]))
def test_every_cluster_exports_the_variables_conf_databricks_reads(target: str) -> None:
    text = "\n".join(p.read_text() for p in (PROJECT_ROOT / "conf/databricks").glob("**/*.yml"))
    references = re.findall(r"\$\{env:(KL_\w+)(,?)", text)
    required = {name for name, comma in references if not comma}
    known = {name for name, _ in references}
    assert {"KL_CATALOG", "KL_SCHEMA"} <= required
    resources = view(target)["resources"]
    (schema,) = resources["schemas"].values()
    (volume,) = resources["volumes"].values()
    (experiment,) = resources["experiments"].values()
    for job, spec in resources["jobs"].items():
        for cluster in spec["job_clusters"]:
            key, env = cluster["job_cluster_key"], cluster["new_cluster"].get("spark_env_vars", {})
            exported = {name for name in env if name.startswith("KL_")}
            assert required <= exported, f"{job}.{key} does not set {required - exported}"
            assert exported <= known, f"{job}.{key} sets unread {exported - known}"
            # The objects the bundle creates, under the names the CLI gives them in this target
            # (development mode prefixes the schema and the experiment).
            assert env["KL_CATALOG"] == schema["catalog_name"] == volume["catalog_name"]
            assert env["KL_SCHEMA"] == schema["name"] == volume["schema_name"]
            assert env["KL_VOLUME"] == volume["name"]
            assert env["KL_MLFLOW_EXPERIMENT"] == experiment["name"]
            assert TELEMETRY_OFF.items() <= env.items(), f"{job}.{key}: telemetry not off"


@pytest.mark.parametrize("job", list(JOBS))
def test_job_parameters_are_valid_kedro_runtime_params(job: str) -> None:
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.params_validation import validate_parameters
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


# --- Databricks' published bundle model (databricks-bundles) -------------------------------------


@pytest.mark.parametrize("target", list(BUNDLE["targets"]))
def test_every_target_fits_the_published_bundle_model(target: str) -> None:
    bundle_schema.check_sections(BUNDLE)
    loaded = bundle_schema.validate_resources(view(target))
    assert set(loaded) >= {"jobs", "schemas", "volumes", "experiments"}
    assert set(loaded["jobs"]) == set(JOBS)


# (where, old field, misspelling): each must turn validation red, naming the misspelling.
TYPOS = [
    (
        "resources.jobs.keras_lakehouse.job_clusters[0].new_cluster",
        "spark_version",
        "spark_versoin",
    ),
    ("resources.jobs.keras_lakehouse.job_clusters[1].new_cluster", "num_workers", "num_worker"),
    (
        "resources.jobs.keras_lakehouse.job_clusters[0].new_cluster.autoscale",
        "max_workers",
        "max_worker",
    ),
    ("resources.jobs.keras_lakehouse_inference.tasks[0]", "python_wheel_task", "python_whl_task"),
    ("resources.jobs.keras_lakehouse.tasks[0].python_wheel_task", "entry_point", "entrypoint"),
    ("resources.jobs.keras_lakehouse", "max_concurrent_runs", "max_concurent_runs"),
    ("resources.schemas.keras_lakehouse", "catalog_name", "catalog"),
    ("resources.schemas.keras_lakehouse.grants[0]", "privileges", "privilege"),
    ("resources.volumes.keras_lakehouse", "volume_type", "type"),
    ("resources.experiments.keras_lakehouse", "name", "display_name"),
    ("targets.prod.resources.registered_models.keras_lakehouse_cnn", "schema_name", "schema"),
    (
        "targets.prod.resources.schemas.keras_lakehouse.lifecycle",
        "prevent_destroy",
        "prevent_delete",
    ),
    ("targets.prod.run_as", "service_principal_name", "service_principal"),
    ("targets.prod.permissions[0]", "group_name", "group"),
    ("targets.prod", "run_as", "runas"),
    ("targets.dev", "mode", "mdoe"),
    ("artifacts.keras_lakehouse", "dynamic_version", "dynamic_versions"),
    ("variables.catalog", "default", "defualt"),
]


@pytest.mark.parametrize(("where", "old", "new"), TYPOS, ids=[f"{o}->{n}" for _, o, n in TYPOS])
def test_a_misspelt_field_fails_validation(where: str, old: str, new: str) -> None:
    broken = bundle_schema.mutated(BUNDLE, where, bundle_schema.rename_key(old, new))
    with pytest.raises(BundleSchemaError, match=re.escape(f"'{new}'")):
        bundle_schema.validate_bundle(broken, TARGET_VARS, TARGET_USERS)


# (where, wrong value, what the error names): values outside the model's types and enums.
WRONG_VALUES = [
    ("resources.volumes.keras_lakehouse.grants[0].privileges[0]", "READ_VOLUMES", "READ_VOLUMES"),
    ("resources.volumes.keras_lakehouse.volume_type", "MANAGE", "MANAGE"),
    (
        "resources.jobs.keras_lakehouse.job_clusters[0].new_cluster.data_security_mode",
        "SINGLE",
        "SINGLE",
    ),
    ("variables.min_workers.default", "one", "one"),
    ("targets.prod.permissions[2].level", "CAN_READ", "CAN_READ"),
    ("resources.schemas.keras_lakehouse.catalog_name", "${var.catlog}", "var.catlog"),
]


@pytest.mark.parametrize(
    ("where", "value", "named"), WRONG_VALUES, ids=[w for _, w, _ in WRONG_VALUES]
)
def test_a_wrong_value_fails_validation(where: str, value: str, named: str) -> None:
    def change(parent, last) -> None:
        assert parent[last] is not None  # replaces something that is there
        parent[last] = value

    broken = bundle_schema.mutated(BUNDLE, where, change)
    with pytest.raises(BundleSchemaError, match=re.escape(named)):
        bundle_schema.validate_bundle(broken, TARGET_VARS, TARGET_USERS)


def test_prod_runs_as_the_service_principal_it_is_given_and_has_no_default() -> None:
    assert "default" not in BUNDLE["variables"]["service_principal"]
    with pytest.raises(BundleSchemaError, match="service_principal"):
        bundle_schema.target_view(BUNDLE, "prod")
    prod = view("prod")
    principal = PROD_VARS["service_principal"]
    assert prod["run_as"] == {"service_principal_name": principal}
    loaded = bundle_schema.validate_resources(prod)
    for job in loaded["jobs"].values():
        assert job.run_as.service_principal_name == principal
    # dev runs as the deploying user.
    assert "run_as" not in view("dev")


def test_prod_permissions_let_admins_manage_and_readers_view() -> None:
    variables = {name: spec.get("default") for name, spec in BUNDLE["variables"].items()}
    prod = view("prod")
    for job in prod["resources"]["jobs"].values():
        levels = {
            (p["level"], p.get("group_name") or p.get("service_principal_name"))
            for p in job["permissions"]
        }
        assert ("CAN_MANAGE", variables["admins_group"]) in levels
        assert ("CAN_VIEW", variables["workspace_readers_group"]) in levels
        assert ("CAN_MANAGE", PROD_VARS["service_principal"]) in levels
    (experiment,) = prod["resources"]["experiments"].values()
    assert {p["level"] for p in experiment["permissions"]} == {"CAN_MANAGE", "CAN_READ"}
    assert "permissions" not in BUNDLE["targets"]["dev"]


def _grants(resource: dict) -> dict[str, set[str]]:
    return {g["principal"]: set(g["privileges"]) for g in resource.get("grants", [])}


@pytest.mark.parametrize("target", list(BUNDLE["targets"]))
def test_the_bundle_owns_its_schema_volume_and_experiment_with_reader_grants(target: str) -> None:
    readers = BUNDLE["variables"]["readers_group"]["default"]
    resources = view(target)["resources"]
    (schema,) = resources["schemas"].values()
    (volume,) = resources["volumes"].values()
    assert _grants(schema)[readers] == {"USE_SCHEMA", "SELECT"}
    assert _grants(volume)[readers] == {"READ_VOLUME"}
    assert volume["volume_type"] == "MANAGED"
    assert (volume["catalog_name"], volume["schema_name"]) == (
        schema["catalog_name"],
        schema["name"],
    )
    assert len(resources["experiments"]) == 1
    for granted in [*_grants(schema).values(), *_grants(volume).values()]:
        assert granted <= {"USE_SCHEMA", "SELECT", "READ_VOLUME", "EXECUTE", "ALL_PRIVILEGES"}
    if target == "prod":
        # The principal the jobs run as may write everything in the schema; nothing is dropped by
        # `bundle destroy`.
        assert _grants(schema)[PROD_VARS["service_principal"]] == {"ALL_PRIVILEGES"}
        for resource in [schema, volume, *resources["registered_models"].values()]:
            assert resource["lifecycle"] == {"prevent_destroy": True}


def test_registered_models_are_the_names_conf_databricks_registers() -> None:
    """prod declares <catalog>.<schema>.keras_lakehouse_{cnn,lstm}, the names
    conf/databricks/globals.yml gives MLflow from the cluster's KL_CATALOG and KL_SCHEMA."""
    globals_ = yaml.safe_load((PROJECT_ROOT / "conf/databricks/globals.yml").read_text())
    assert globals_["uc_schema"] == "${unity_catalog.catalog}.${unity_catalog.schema}"
    assert globals_["unity_catalog"]["catalog"] == "${env:KL_CATALOG}"
    assert globals_["unity_catalog"]["schema"] == "${env:KL_SCHEMA}"
    prod = view("prod")["resources"]
    env = prod["jobs"][TRAINING_JOB]["job_clusters"][0]["new_cluster"]["spark_env_vars"]
    expected = {
        name.replace("${uc_schema}", f"{env['KL_CATALOG']}.{env['KL_SCHEMA']}")
        for name in globals_["registered_models"].values()
    }
    declared = {
        f"{m['catalog_name']}.{m['schema_name']}.{m['name']}"
        for m in prod["registered_models"].values()
    }
    assert declared == expected
    readers = BUNDLE["variables"]["readers_group"]["default"]
    for model in prod["registered_models"].values():
        assert _grants(model) == {readers: {"EXECUTE"}}
    # Not in dev: development mode would prefix them (dev_<user>_keras_lakehouse_cnn), and MLflow
    # would register the unprefixed names next to them.
    assert "registered_models" not in view("dev")["resources"]


def test_spark_stages_autoscale_between_the_bundle_variables() -> None:
    variables = {name: spec.get("default") for name, spec in BUNDLE["variables"].items()}
    assert 0 < variables["min_workers"] <= variables["max_workers"]
    for target in BUNDLE["targets"]:
        for job in bundle_schema.validate_resources(view(target))["jobs"].values():
            for cluster in job.job_clusters:
                if cluster.job_cluster_key != CPU_CLUSTER:
                    continue
                spec = cluster.new_cluster
                assert spec.num_workers is None, "a fixed size and autoscale exclude each other"
                assert (spec.autoscale.min_workers, spec.autoscale.max_workers) == (
                    variables["min_workers"],
                    variables["max_workers"],
                )
                assert spec.spark_version == variables["cpu_spark_version"]
    for job in JOBS.values():
        for cluster in job["job_clusters"]:
            if cluster["job_cluster_key"] == CPU_CLUSTER:
                assert cluster["new_cluster"]["autoscale"] == {
                    "min_workers": "${var.min_workers}",
                    "max_workers": "${var.max_workers}",
                }


def test_cpu_and_gpu_stages_share_one_ml_runtime_release_as_variables() -> None:
    variables = {name: spec.get("default") for name, spec in BUNDLE["variables"].items()}
    cpu, gpu = variables["cpu_spark_version"], variables["gpu_spark_version"]
    assert re.fullmatch(r"\d+\.\d+\.x-cpu-ml-scala2\.13", cpu), cpu
    assert re.fullmatch(r"\d+\.\d+\.x-gpu-ml-scala2\.13", gpu), gpu
    assert cpu.split(".x-")[0] == gpu.split(".x-")[0], "one runtime release for every stage"
    for job in JOBS.values():
        for cluster in job["job_clusters"]:
            assert cluster["new_cluster"]["spark_version"] in {
                "${var.cpu_spark_version}",
                "${var.gpu_spark_version}",
            }


def test_training_cluster_is_single_node_unless_multi_worker_is_chosen() -> None:
    clusters = _clusters(TRAINING_JOB)
    (training,) = [t for t in JOBS[TRAINING_JOB]["tasks"] if t["task_key"] == "training"]
    assert training["job_cluster_key"] == "${var.training_cluster}"
    assert BUNDLE["variables"]["training_cluster"]["default"] == GPU_CLUSTER
    multi = clusters[GPU_MULTI_NODE]
    assert multi["num_workers"] == "${var.gpu_workers}"
    assert BUNDLE["variables"]["gpu_workers"]["default"] >= 1
    # Barrier tasks start all at once: a fixed size, and nothing of the single-node profile.
    assert "autoscale" not in multi
    assert "spark_conf" not in multi
    assert "custom_tags" not in multi
    assert multi["spark_version"] == clusters[GPU_CLUSTER]["spark_version"]
    assert multi["node_type_id"] == clusters[GPU_CLUSTER]["node_type_id"]
    # The choice is a variable: the multi-node view validates and runs training there.
    chosen = bundle_schema.target_view(BUNDLE, "dev", {"training_cluster": GPU_MULTI_NODE})
    bundle_schema.validate_resources(chosen)
    tasks = {t["task_key"]: t for t in chosen["resources"]["jobs"][TRAINING_JOB]["tasks"]}
    assert tasks["training"]["job_cluster_key"] == GPU_MULTI_NODE
    assert {tasks[k]["job_cluster_key"] for k in tasks if k != "training"} == {CPU_CLUSTER}
    # The training job's strategy parameter is what the multi-worker path reads.
    assert {p["name"] for p in JOBS[TRAINING_JOB]["parameters"]} >= {"strategy"}


# --- Lakehouse Monitoring: the opt-in monitor of the predictions table ---------------------------
# Granularities the monitoring API accepts (databricks-sdk's MonitorInferenceLog.granularities).
GRANULARITIES = re.compile(r"5 minutes|30 minutes|1 hour|1 day|[1-4] weeks?|1 month|1 year")


def test_databricks_yml_offers_the_monitoring_file_as_an_include() -> None:
    """The opt-in is one edit: uncommenting the include databricks.yml shows (it stays commented
    until the predictions table exists). The file adds the monitor and nothing else."""
    text = (PROJECT_ROOT / "databricks.yml").read_text()
    offered = re.search(r"^#? ?include:\n#? *- (\S+)$", text, re.M)
    assert offered, "databricks.yml shows no include of the monitoring file"
    assert offered.group(1) == MONITORING_FILE
    included = yaml.safe_load((PROJECT_ROOT / MONITORING_FILE).read_text())
    assert set(included) == {"resources"}
    assert set(included["resources"]) == {"quality_monitors"}


@pytest.mark.parametrize("target", list(BUNDLE["targets"]))
def test_the_monitor_fits_the_published_bundle_model(target: str) -> None:
    bundle_schema.check_sections(MONITORED)
    loaded = bundle_schema.validate_resources(view(target, MONITORED))
    (monitor,) = loaded["quality_monitors"].values()
    assert set(loaded["jobs"]) == set(JOBS)
    assert monitor.inference_log is not None


@pytest.mark.parametrize("target", list(BUNDLE["targets"]))
def test_the_monitor_profiles_the_predictions_table_the_inference_job_writes(target: str) -> None:
    from keras_lakehouse.serving.scoring import _SCORED_SCHEMA, PREDICTIONS_COLUMNS

    resources = view(target, MONITORED)["resources"]
    (schema,) = resources["schemas"].values()
    (monitor,) = resources["quality_monitors"].values()
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/databricks/catalog.yml").read_text())
    predictions = catalog["predictions"]
    assert predictions["type"] == "databricks.ManagedTableDataset"
    # The table and schema the jobs write to in this target (their KL_CATALOG and KL_SCHEMA).
    env = resources["jobs"][INFERENCE_JOB]["job_clusters"][0]["new_cluster"]["spark_env_vars"]
    assert (env["KL_CATALOG"], env["KL_SCHEMA"]) == (schema["catalog_name"], schema["name"])
    uc_schema = f"{schema['catalog_name']}.{schema['name']}"
    assert monitor["table_name"] == f"{uc_schema}.{predictions['table']}"
    assert monitor["output_schema_name"] == uc_schema
    # The dashboard's files, inside this target's deployment folder.
    root = view(target, MONITORED)["workspace"]["root_path"]
    assert monitor["assets_dir"].startswith(f"{root}/")

    log = monitor["inference_log"]
    assert log["problem_type"] == "PROBLEM_TYPE_CLASSIFICATION"
    assert (log["prediction_col"], log["model_id_col"], log["timestamp_col"]) == (
        "predicted_label",
        "model_version",
        "scored_at",
    )
    assert log["prediction_proba_col"] == "probabilities"
    assert "label_col" not in log, "predictions carry no ground truth"
    used = {log[k] for k in ("prediction_col", "prediction_proba_col", "model_id_col")}
    used |= {log["timestamp_col"], *monitor["slicing_exprs"]}
    assert used <= set(PREDICTIONS_COLUMNS), used - set(PREDICTIONS_COLUMNS)
    # The probabilities are the map<label, probability> the API asks for.
    proba = _SCORED_SCHEMA[log["prediction_proba_col"]].dataType
    assert proba.simpleString() == "map<string,double>"
    # Versions repeat across models (cnn v1, lstm v1): a slice per model keeps them apart.
    assert "model_name" in monitor["slicing_exprs"]
    assert log["granularities"]
    for granularity in log["granularities"]:
        assert GRANULARITIES.fullmatch(granularity), granularity


def test_the_monitor_refreshes_daily_in_prod_and_by_hand_in_dev() -> None:
    """Development mode pauses triggers; a monitor cannot be paused, so the CLI drops its schedule
    there (unless it says UNPAUSED, which this file does not)."""
    (declared,) = MONITORED["resources"]["quality_monitors"].values()
    assert "pause_status" not in declared["schedule"]
    (prod,) = view("prod", MONITORED)["resources"]["quality_monitors"].values()
    assert prod["schedule"] == declared["schedule"]
    assert prod["schedule"]["timezone_id"] == "UTC"
    (dev,) = view("dev", MONITORED)["resources"]["quality_monitors"].values()
    assert "schedule" not in dev


def test_prod_deploys_the_monitor_only_as_the_principal_it_runs_as() -> None:
    """Monitors have no run_as: `bundle validate -t prod` refuses them unless the deploying
    identity is prod's run_as service principal (CI). Without the monitor, anyone may validate."""
    with pytest.raises(BundleSchemaError, match="quality_monitors do not support"):
        bundle_schema.target_view(MONITORED, "prod", PROD_VARS)
    unmonitored = copy.deepcopy(MONITORED)
    del unmonitored["resources"]["quality_monitors"]
    bundle_schema.target_view(unmonitored, "prod", PROD_VARS)
    assert view("prod", MONITORED)["run_as"] == {
        "service_principal_name": PROD_VARS["service_principal"]
    }


# (where in the monitor, old field, misspelling): each must turn validation red.
MONITOR = f"resources.quality_monitors.{next(iter(MONITORED['resources']['quality_monitors']))}"
MONITOR_TYPOS = [
    (f"{MONITOR}.inference_log", "prediction_col", "prediction_column"),
    (f"{MONITOR}.inference_log", "timestamp_col", "timestamp_column"),
    (MONITOR, "output_schema_name", "output_schema"),
    (f"{MONITOR}.schedule", "quartz_cron_expression", "cron"),
]


@pytest.mark.parametrize(
    ("where", "old", "new"), MONITOR_TYPOS, ids=[f"{o}->{n}" for _, o, n in MONITOR_TYPOS]
)
def test_a_misspelt_monitor_field_fails_validation(where: str, old: str, new: str) -> None:
    broken = bundle_schema.mutated(MONITORED, where, bundle_schema.rename_key(old, new))
    with pytest.raises(BundleSchemaError, match=re.escape(f"'{new}'")):
        # prod: dev drops the schedule before validation would see it.
        bundle_schema.validate_resources(view("prod", broken))


def test_a_wrong_problem_type_fails_validation() -> None:
    def change(parent, last) -> None:
        parent[last] = "classification"

    broken = bundle_schema.mutated(MONITORED, f"{MONITOR}.inference_log.problem_type", change)
    with pytest.raises(BundleSchemaError, match="classification"):
        bundle_schema.validate_resources(view("prod", broken))


def test_the_inference_job_creates_its_tables_with_a_change_data_feed() -> None:
    """The monitor refreshes incrementally when the monitored table records a change data feed;
    ManagedTableDataset sets no table properties, so the inference cluster's Spark session makes
    it the default for the tables it creates (predictions among them)."""
    for cluster in _clusters(INFERENCE_JOB).values():
        conf = cluster.get("spark_conf", {})
        assert conf.get("spark.databricks.delta.properties.defaults.enableChangeDataFeed") == "true"


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

"""The databricks env (conf/databricks): every base dataset lands in Unity Catalog (one catalog:
base paths under ``${globals:data_root}``, the databricks file only for what differs), no
credentials, start-up errors that name the missing setting, the cluster's Spark session left alone,
and a local stand-in of `kedro run --env=databricks` against a local Delta metastore."""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from keras_lakehouse import settings
from keras_lakehouse.hooks import SparkHooks
from keras_lakehouse.params_validation import validate_parameters
from keras_lakehouse.platform.env_settings import (
    MissingSettingError,
    check_unity_catalog,
    env_setting,
)
from keras_lakehouse.platform.tracking import configure_tracking

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASE = PROJECT_ROOT / "conf" / "base"
DATABRICKS = PROJECT_ROOT / "conf" / "databricks"
SOURCE = PROJECT_ROOT / "src" / "keras_lakehouse"
SETTINGS = {"KL_CATALOG": "main", "KL_SCHEMA": "keras_lakehouse"}
UNITY_VARIABLES = (
    "KL_CATALOG",
    "KL_SCHEMA",
    "KL_VOLUME",
    "KL_VOLUME_ROOT",
    "KL_MLFLOW_EXPERIMENT",
    "KL_FILE_SOURCE",
)
# Datasets that live only in memory need no mapping.
NOT_PERSISTED = ("MemoryDataset", "SharedMemoryDataset")
# Every file of the catalog lives under ${globals:data_root}: `data` (relative to the project root)
# locally, the Volume in the databricks env (VOLUME_ROOT: KL_VOLUME's default under SETTINGS).
ROOTED = "${globals:data_root}/"
LOCAL_ROOT = "data"
VOLUME_ROOT = "/Volumes/main/keras_lakehouse/keras_lakehouse"
# The options of a catalog entry that hold a path.
PATH_KEYS = ("filepath", "validated_by")
# A local path literal in a config value (`data/...`, not `metadata/` or `data_root}/`).
LOCAL_PATH = re.compile(r"(?<![\w.-])data/")
# What a credential looks like: a Databricks personal access token, a secret-named key with a
# literal value, or a long run of letters and digits.
SECRET_PATTERNS = (
    re.compile(r"dapi[0-9a-f]{16,}"),
    re.compile(
        r"^\s*[\w.-]*(token|password|passwd|secret|api_?key|access_?key|client_?secret)[\w.-]*"
        r"\s*:\s*(?!\$\{)\S+",
        re.IGNORECASE | re.MULTILINE,
    ),
    re.compile(r"(?=[A-Za-z0-9+/=-]*\d)(?=[A-Za-z0-9+/=-]*[A-Za-z])[A-Za-z0-9+/=-]{32,}"),
)


def catalog_entries(path: Path) -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load(path.read_text()) or {}
    return {name: entry for name, entry in raw.items() if not name.startswith("_")}


def persisted(entries: dict[str, dict[str, Any]]) -> set[str]:
    return {
        name
        for name, entry in entries.items()
        if not str(entry.get("type", "")).endswith(NOT_PERSISTED)
    }


def string_values(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every string in ``value`` with its dotted key: ``[("save_args.format", "png"), ...]``."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in string_values(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [item for v in value for item in string_values(v, key)]
    return [(key.lstrip("."), value)] if isinstance(value, str) else []


def config_loader(env: str, runtime_params: dict | None = None) -> OmegaConfigLoader:
    """The project's own config loader settings, on the project's conf folder."""
    return OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        env=env,
        runtime_params=runtime_params,
        **settings.CONFIG_LOADER_ARGS,
    )


@pytest.fixture
def unity_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in UNITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    return SETTINGS


# ---- one catalog: base roots its paths at a global, databricks holds only what differs --------
def rerooted(value: Any, root: str) -> Any:
    """``value`` with ``root`` at the start of a string replaced by ``<root>``."""
    if isinstance(value, dict):
        return {key: rerooted(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [rerooted(item, root) for item in value]
    if isinstance(value, str) and (value == root or value.startswith(f"{root}/")):
        return "<root>" + value.removeprefix(root)
    return value


def test_base_catalog_takes_every_path_from_the_data_root_global() -> None:
    """No `data/` literal in base: an env moves every file by setting ``data_root`` alone."""
    literal = [
        f"{name}.{key}: {value}"
        for name, entry in catalog_entries(BASE / "catalog.yml").items()
        for key, value in string_values(entry)
        if (key in PATH_KEYS and not value.startswith(ROOTED)) or LOCAL_PATH.search(value)
    ]
    assert not literal, f"conf/base/catalog.yml paths not under {ROOTED}: {literal}"


def test_base_paths_resolve_under_the_local_data_folder() -> None:
    """Locally every file stays where it was: ``data/<layer>/...``, relative to the project root."""
    assert config_loader("base")["globals"]["data_root"] == LOCAL_ROOT
    catalog = config_loader("base")["catalog"]
    outside = [
        f"{name}.{key}: {entry[key]}"
        for name, entry in catalog.items()
        for key in PATH_KEYS
        if key in entry and not entry[key].startswith(f"{LOCAL_ROOT}/")
    ]
    assert not outside, f"Base paths outside {LOCAL_ROOT}/: {outside}"


def test_every_dataset_lands_in_unity_catalog_under_the_databricks_env(unity_env) -> None:
    """Base and databricks merged, resolved: each persisted dataset is a table of the configured
    schema or a path in the configured Volume; nothing points at the local data/ folder."""
    catalog = config_loader("databricks")["catalog"]
    assert set(catalog) == set(catalog_entries(BASE / "catalog.yml"))
    wrong = [
        f"{name}: {entry}"
        for name, entry in sorted(catalog.items())
        if name in persisted(catalog) and not in_unity_catalog(entry)
    ]
    assert not wrong, "Datasets neither in main.keras_lakehouse nor in its Volume:\n" + "\n".join(
        wrong
    )


def in_unity_catalog(entry: dict[str, Any]) -> bool:
    """A resolved entry: a table of main.keras_lakehouse or a file in its Volume, and nothing in
    the local data/ folder."""
    if "filepath" in entry:
        table = True
    elif entry["type"] == "databricks.ManagedTableDataset":
        table = (entry["catalog"], entry["database"]) == ("main", "keras_lakehouse")
    else:
        table = entry["table"].startswith("main.keras_lakehouse.")
    paths = [entry[key] for key in PATH_KEYS if key in entry]
    in_volume = all(path.startswith(f"{VOLUME_ROOT}/") for path in paths)
    local = [value for _, value in string_values(entry) if LOCAL_PATH.search(value)]
    return table and in_volume and not local


def test_databricks_catalog_holds_only_what_differs_from_base(unity_env) -> None:
    """An entry of conf/databricks/catalog.yml replaces the base entry as a whole (Kedro merges
    catalog entries by name): one that only moves base's paths to the Volume is a second copy to
    keep in step. Base reaches the Volume through ``${globals:data_root}``."""
    base = config_loader("base")["catalog"]
    databricks = config_loader("databricks")["catalog"]
    names = set(catalog_entries(DATABRICKS / "catalog.yml"))
    stale = sorted(names - set(base))
    assert not stale, f"conf/databricks/catalog.yml maps datasets that base lacks: {stale}"
    repeats = sorted(
        name
        for name in names
        if rerooted(databricks[name], VOLUME_ROOT) == rerooted(base[name], LOCAL_ROOT)
    )
    assert not repeats, (
        f"conf/databricks/catalog.yml entries that only repeat conf/base/catalog.yml with the "
        f"Volume as root: {repeats}. Delete them: base takes the root from ${{globals:data_root}}."
    )


def test_databricks_entries_name_their_tables_through_globals() -> None:
    """Tables in the schema and files in the Volume that the environment variables choose: table
    names through ${globals:uc_schema} / unity_catalog, paths through ${globals:data_root}."""
    for name, entry in catalog_entries(DATABRICKS / "catalog.yml").items():
        for key in PATH_KEYS:
            if key in entry:
                assert entry[key].startswith(ROOTED), f"{name}.{key}"
        if "filepath" in entry:
            continue
        if entry["type"] == "databricks.ManagedTableDataset":
            assert entry["catalog"] == "${globals:unity_catalog.catalog}", name
            assert entry["database"] == "${globals:unity_catalog.schema}", name
        else:
            # A `validated_by` entry reads its table at the version its verdict (in the Volume)
            # validated: images_bronze_validated → images_bronze.
            table = table_read_by(name)
            assert entry["table"] == f"${{globals:uc_schema}}.{table}", name


def table_read_by(name: str) -> str:
    """The table an entry names: its own, or the one it reads (``images_bronze_validated``: at
    the version a verdict validated; ``images_bronze_known``: as the run found it)."""
    return name.removesuffix("_validated").removesuffix("_known")


def test_databricks_catalog_builds_every_dataset(unity_env) -> None:
    loader = config_loader("databricks")
    catalog = DataCatalog.from_config(loader["catalog"])
    for name in persisted(loader["catalog"]):
        description = catalog.get(name)._describe()
        if "table" in description and description.get("database"):  # ManagedTableDataset
            assert (description["catalog"], description["database"]) == ("main", "keras_lakehouse")
        elif description.get("table"):
            table = table_read_by(name)
            assert description["table"] == f"main.keras_lakehouse.{table}"
        else:
            location = str(description.get("filepath") or description.get("location"))
            assert location.startswith(f"{VOLUME_ROOT}/"), name


def test_databricks_mlflow_is_workspace_tracking_and_unity_catalog_registry(unity_env) -> None:
    mlflow = config_loader("databricks")["mlflow"]
    assert mlflow["tracking_uri"] == "databricks"
    assert mlflow["registry_uri"] == "databricks-uc"
    assert mlflow["experiment_name"].startswith("/")
    assert "artifact_location" not in mlflow


def test_registered_models_get_three_level_names(unity_env) -> None:
    base = config_loader("base")["globals"]["registered_models"]
    databricks = config_loader("databricks")["globals"]["registered_models"]
    assert databricks == {key: f"main.keras_lakehouse.{name}" for key, name in base.items()}


def test_databricks_parameters_are_valid(unity_env) -> None:
    validate_parameters(config_loader("databricks")["parameters"])


def test_databricks_parameters_hold_no_local_path(unity_env) -> None:
    parameters = config_loader("databricks")["parameters"]
    local = [(key, value) for key, value in string_values(parameters) if value.startswith("data/")]
    assert not local, f"Parameters with a local path in the databricks env: {local}"


def test_runtime_params_keep_the_rest_of_their_section(unity_env) -> None:
    """``--params training.cnn.epochs=2`` on the databricks env changes that key only (parameters
    are soft-merged: settings.py)."""
    base = config_loader("base")["parameters"]["training"]
    parameters = config_loader("databricks", {"training": {"cnn": {"epochs": 2}}})["parameters"]
    assert parameters["training"]["cnn"] == base["cnn"] | {"epochs": 2}
    assert parameters["training"]["lstm"] == base["lstm"]


def find_secrets(text: str) -> list[str]:
    return [match.group(0) for pattern in SECRET_PATTERNS for match in pattern.finditer(text)]


def test_databricks_conf_holds_no_credentials() -> None:
    files = [path for path in DATABRICKS.rglob("*") if path.is_file()]
    assert not [path for path in files if path.stem.startswith("credentials")]
    found = {str(path): find_secrets(path.read_text()) for path in files}
    assert not {path: values for path, values in found.items() if values}


@pytest.mark.parametrize(
    "line",
    [
        "token: dapi0123456789abcdef0123456789abcdef",
        "  client_secret: hunter2",
        "DATABRICKS_TOKEN: abc",
        "key: 9f8e7d6c5b4a39281716f5e4d3c2b1a0ffeeddcc",
    ],
)
def test_the_credential_check_recognises_a_credential(line: str) -> None:
    assert find_secrets(line)


# ---- settings that come from the environment ----------------------------------------------------
def test_env_setting_returns_the_variable_or_its_default(monkeypatch) -> None:
    monkeypatch.setenv("KL_TEST_SETTING", "value")
    monkeypatch.delenv("KL_TEST_UNSET", raising=False)
    assert env_setting("KL_TEST_SETTING") == "value"
    assert env_setting("KL_TEST_UNSET", "fallback") == "fallback"
    with pytest.raises(MissingSettingError, match="KL_TEST_UNSET is not set"):
        env_setting("KL_TEST_UNSET")


def test_unset_catalog_fails_at_startup_naming_the_variable(
    unity_env, monkeypatch, project_copy, run_kedro
) -> None:
    project = project_copy(env="databricks")
    monkeypatch.delenv("KL_CATALOG")
    monkeypatch.chdir(project)
    with pytest.raises(Exception, match="KL_CATALOG is not set") as error:
        run_kedro(project, env="databricks")
    assert "unity_catalog.catalog" in str(error.value)
    assert not (project / "data").exists()


def test_missing_schema_or_volume_fails_naming_them(spark, tmp_path) -> None:
    names = {"catalog": "spark_catalog", "schema": f"kl_{uuid.uuid4().hex[:8]}", "volume": "v"}
    global_values = {"unity_catalog": names, "volume_root": str(tmp_path / "no_volume")}
    with pytest.raises(ValueError, match="KL_SCHEMA='kl_"):
        check_unity_catalog(spark, global_values)
    spark.sql(f"CREATE SCHEMA spark_catalog.{names['schema']}")
    try:
        with pytest.raises(ValueError, match="no_volume does not exist"):
            check_unity_catalog(spark, global_values)
        check_unity_catalog(spark, global_values | {"volume_root": str(tmp_path)})
    finally:
        spark.sql(f"DROP SCHEMA spark_catalog.{names['schema']}")
    check_unity_catalog(spark, {"image_labels": ["a"]})  # base env: nothing to check


# ---- Spark on Databricks -----------------------------------------------------------------------
class RecordingBuilder:
    """Stands in for ``SparkSession.builder``: only a bare ``getOrCreate()`` is allowed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.session = object()

    def getOrCreate(self) -> object:  # noqa: N802 - Spark's name
        self.calls.append("getOrCreate")
        return self.session

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"On Databricks the session must not be configured: {name}()")


def hook_context(tmp_path: Path) -> Any:
    loader = {"spark": {"spark.master": "local[*]", "spark.driver.memory": "4g"}, "globals": {}}
    return SimpleNamespace(config_loader=loader, project_path=tmp_path)


@pytest.mark.parametrize("active", [False, True])
def test_on_databricks_the_hook_builds_no_session(monkeypatch, tmp_path, active) -> None:
    import delta
    from pyspark.sql import SparkSession

    builder = RecordingBuilder()
    cluster_session = object()
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    monkeypatch.setattr(SparkSession, "builder", builder)
    monkeypatch.setattr(
        SparkSession, "getActiveSession", staticmethod(lambda: cluster_session if active else None)
    )
    monkeypatch.setattr(delta, "configure_spark_with_delta_pip", builder.__getattr__)

    SparkHooks().after_context_created(hook_context(tmp_path))

    assert builder.calls == ([] if active else ["getOrCreate"])


def test_no_code_stops_the_spark_session() -> None:
    """On a cluster, stopping the session ends it for every job and notebook attached."""
    stops = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
        for path in SOURCE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "stop"
        and re.search(r"spark|session|context|\bsc\b", ast.unparse(node.func.value), re.I)
    ]
    assert not stops, f"Calls to .stop() in the run path: {stops}"


# ---- MLflow -------------------------------------------------------------------------------------
@pytest.fixture
def mlflow_calls(monkeypatch) -> dict[str, Any]:
    """Record what configure_tracking asks of MLflow without touching MLflow's global state."""
    import mlflow

    calls: dict[str, Any] = {}
    monkeypatch.setattr(mlflow, "set_tracking_uri", lambda uri: calls.update(tracking=uri))
    monkeypatch.setattr(mlflow, "set_registry_uri", lambda uri: calls.update(registry=uri))
    monkeypatch.setattr(mlflow, "get_experiment_by_name", lambda name: None)
    monkeypatch.setattr(
        mlflow,
        "create_experiment",
        lambda name, artifact_location=None: calls.update(
            experiment=name, artifact_location=artifact_location
        ),
    )
    monkeypatch.setattr(mlflow, "set_experiment", lambda name: None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return calls


DATABRICKS_MLFLOW = {
    "tracking_uri": "databricks",
    "registry_uri": "databricks-uc",
    "experiment_name": "/Shared/keras_lakehouse",
}


def test_on_databricks_mlflow_uses_unity_catalog_and_no_artifact_location(
    mlflow_calls, tmp_path
) -> None:
    configure_tracking(DATABRICKS_MLFLOW, project_path=tmp_path)
    assert mlflow_calls == {
        "tracking": "databricks",
        "registry": "databricks-uc",
        "experiment": "/Shared/keras_lakehouse",
        "artifact_location": None,
    }


def test_the_registry_follows_a_tracking_store_set_by_the_environment(
    mlflow_calls, monkeypatch, tmp_path
) -> None:
    local = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", local)
    configure_tracking(DATABRICKS_MLFLOW, project_path=tmp_path)
    assert (mlflow_calls["tracking"], mlflow_calls["registry"]) == (local, local)
    assert mlflow_calls["artifact_location"] == (tmp_path / "mlruns").as_uri()

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
    configure_tracking(DATABRICKS_MLFLOW, project_path=tmp_path)
    assert mlflow_calls["registry"] == "databricks-uc"


# ---- the local stand-in: kedro run --env=databricks --------------------------------------------
# Where things land, not what models learn: the smallest sample the quality suites pass
# (SMALL_SAMPLE), one epoch, and no quality floor (a one-epoch model need not reach one).
STANDIN_PARAMS = {
    "training": {"cnn": {"epochs": 1}, "lstm": {"epochs": 1}},
    "evaluation": {"cnn": {"floor": 0.0}, "lstm": {"floor": 0.0}},
}


@pytest.fixture(scope="module")
def standin(spark, project_copy, sample_data, run_kedro, tmp_path_factory, mlflow_store):
    """The databricks env's own catalog run against the local metastore: the tables in a fresh
    schema of spark_catalog, the Volume in a temporary folder, MLflow in the suite's local store
    behind a registry that refuses what Unity Catalog refuses (keras_lakehouse.serving.uc_standin).
    Runs the default pipeline, then inference."""
    from keras_lakehouse.serving.uc_standin import STANDIN_SCHEME, register_standin_scheme

    register_standin_scheme()

    schema = f"kl_standin_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE SCHEMA spark_catalog.{schema}")
    volume = tmp_path_factory.mktemp("volume")
    sample_data(volume / "01_raw", small=True)
    project = project_copy(env="databricks")
    with pytest.MonkeyPatch.context() as patch:
        for name in UNITY_VARIABLES:
            patch.delenv(name, raising=False)
        patch.setenv(
            "MLFLOW_REGISTRY_URI", f"{STANDIN_SCHEME}:{mlflow_store.removeprefix('sqlite:///')}"
        )
        patch.setenv("KL_CATALOG", "spark_catalog")
        patch.setenv("KL_SCHEMA", schema)
        patch.setenv("KL_VOLUME_ROOT", str(volume))
        patch.setenv("KL_FILE_SOURCE", "binaryFile")  # Auto Loader is Databricks-only
        patch.chdir(project)
        # What the run reads and writes: base and databricks merged, resolved for this stand-in.
        catalog = config_loader("databricks")["catalog"]
        try:
            run_kedro(project, env="databricks", runtime_params=STANDIN_PARAMS)
            run_kedro(
                project,
                env="databricks",
                runtime_params=STANDIN_PARAMS,
                pipeline_names=["inference"],
            )
        finally:
            # The run pointed MLflow's process-wide registry at the stand-in: later tests of the
            # session use the suite's plain store (and their two-level names) again.
            import mlflow

            mlflow.set_registry_uri(None)
    return SimpleNamespace(project=project, schema=schema, volume=volume, catalog=catalog)


@pytest.mark.slow
def test_standin_writes_every_table_to_the_metastore(spark, standin) -> None:
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    for name, entry in standin.catalog.items():
        if name not in persisted(standin.catalog) or "filepath" in entry:
            continue
        if entry["type"] == "databricks.ManagedTableDataset":
            table = f"{entry['catalog']}.{entry['database']}.{entry['table']}"
        else:
            table = entry["table"]
        assert spark.catalog.tableExists(table), f"{name}: {table} was not created"
        detail = spark.sql(f"DESCRIBE DETAIL {table}").first()
        assert detail["format"] == "delta", name
        assert (
            detail["location"].removeprefix("file:").startswith(warehouse.removeprefix("file:"))
        ), f"{name} is not a managed table: {detail['location']}"
        assert spark.table(table).count() > 0, f"{name}: {table} is empty"


@pytest.mark.slow
def test_standin_writes_every_file_to_the_volume(standin) -> None:
    files = [name for name in persisted(standin.catalog) if "filepath" in standin.catalog[name]]
    assert {"raw_images", "cnn_model"} <= set(files)  # base entries, rooted at the Volume
    for name in files:
        path = Path(standin.catalog[name]["filepath"])
        assert path.is_relative_to(standin.volume), f"{name}: {path} is outside the Volume"
        assert path.exists(), f"{name}: nothing at {path}"
        if path.is_dir():
            assert any(item.is_file() for item in path.rglob("*")), f"{name}: {path} is empty"
    assert (standin.volume / "05_model_input/images_silver/_delta_log").is_dir()


@pytest.mark.slow
def test_standin_writes_nothing_to_the_local_data_folder(standin) -> None:
    assert not (standin.project / "data").exists(), (
        "The databricks env wrote to the project's local data/ folder: "
        f"{sorted(str(p) for p in (standin.project / 'data').rglob('*'))[:10]}"
    )


@pytest.mark.slow
def test_standin_registers_three_level_model_names(standin) -> None:
    from mlflow import MlflowClient

    from keras_lakehouse.serving.promotion_lock import lock_name

    client = MlflowClient()  # the suite's local store, set by the run (MLFLOW_TRACKING_URI)
    for model in ("keras_lakehouse_cnn", "keras_lakehouse_lstm"):
        name = f"spark_catalog.{standin.schema}.{model}"
        assert client.search_model_versions(f"name='{name}'"), f"{name} was not registered"
        # The promotion lock (a registered model beside it) took a three-level name and is gone.
        assert client.search_registered_models(filter_string=f"name = '{lock_name(name)}'") == []
    experiment = client.get_experiment_by_name("/Shared/keras_lakehouse")
    runs = client.search_runs([experiment.experiment_id])
    assert {run.data.tags.get("model") for run in runs} >= {"cnn", "lstm"}


@pytest.mark.slow
def test_standin_ingestion_counts_match_the_unity_catalog_tables(spark, standin) -> None:
    for modality in ("images", "texts"):
        counts = json.loads(
            (standin.volume / f"08_reporting/{modality}_ingestion_counts.json").read_text()
        )
        tables = {
            kind: spark.table(f"spark_catalog.{standin.schema}.{modality}_{kind}").count()
            for kind in ("bronze", "quarantine")
        }
        assert tables == {"bronze": counts["bronze"], "quarantine": counts["quarantine"]}
        assert tables["bronze"] + tables["quarantine"] == counts["raw"]


# ---- the stand-in registry refuses what Unity Catalog refuses ----------------------------------
@pytest.fixture
def standin_client(tmp_path, monkeypatch):
    from keras_lakehouse.serving.uc_standin import STANDIN_SCHEME, register_standin_scheme

    register_standin_scheme()
    return mlflow_client(f"{STANDIN_SCHEME}:{tmp_path / 'registry.db'}")


def mlflow_client(registry_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(registry_uri=registry_uri)


def test_standin_registry_refuses_what_unity_catalog_refuses(standin_client) -> None:
    from keras_lakehouse.serving.uc_standin import UnityCatalogRuleError

    with pytest.raises(UnityCatalogRuleError, match="three-level names"):
        standin_client.create_registered_model("keras_lakehouse_cnn")
    model = standin_client.create_registered_model("main.kl.keras_lakehouse_cnn")
    with pytest.raises(UnityCatalogRuleError, match="letters, digits and '_'"):
        standin_client.set_registered_model_tag(model.name, "champion.decision", "promoted")
    standin_client.set_registered_model_tag(model.name, "champion_decision", "promoted")
    with pytest.raises(UnityCatalogRuleError, match="single condition"):
        standin_client.search_model_versions(f"name='{model.name}' and run_id='x'")
    assert standin_client.search_model_versions(f"name='{model.name}'") == []


# A deliberately bare pyfunc: MLflow's advice on input examples is beside the point.
@pytest.mark.filterwarnings("ignore:.*An input example was not provided")
def test_standin_registry_refuses_a_model_without_a_signature(standin_client, tmp_path) -> None:
    import mlflow
    import pandas as pd

    from keras_lakehouse.serving.uc_standin import UnityCatalogRuleError

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.set_experiment("standin-registry")
    # Requirements given: MLflow would otherwise infer them by loading the model in a subprocess.
    requirements = ["mlflow"]
    with mlflow.start_run():
        unsigned = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), pip_requirements=requirements
        )
        frame = pd.DataFrame({"x": [1.0]})
        signed = mlflow.pyfunc.log_model(
            name="signed",
            python_model=Echo(),
            signature=mlflow.models.infer_signature(frame, frame),
            pip_requirements=requirements,
        )
    name = "main.kl.echo"
    standin_client.create_registered_model(name)
    with pytest.raises(UnityCatalogRuleError, match="signature"):
        standin_client.create_model_version(name, unsigned.model_uri, unsigned.run_id)
    version = standin_client.create_model_version(name, signed.model_uri, signed.run_id)
    standin_client.set_registered_model_alias(name, "champion", version.version)


# ---- raw files: Auto Loader on Databricks --------------------------------------------------------
def test_databricks_reads_raw_folders_with_auto_loader_from_the_volume(unity_env) -> None:
    """Structural only: Auto Loader exists on Databricks alone (the stand-in above runs the same
    file log with Spark's file source, KL_FILE_SOURCE=binaryFile)."""
    from keras_lakehouse.datasets import FileStreamDataset

    catalog = config_loader("databricks")["catalog"]
    volume = "/Volumes/main/keras_lakehouse/keras_lakehouse"
    for name in ("raw_images", "raw_texts", "raw_images_settled", "raw_texts_settled"):
        entry = catalog[name]
        assert entry["source"] == "cloudFiles", name
        assert entry["checkpoint"].startswith(f"{volume}/02_intermediate/_file_logs/"), name
    calls: list[tuple] = []

    class Reader:  # records how the stream is built
        def __getattr__(self, method: str):
            return lambda *args: calls.append((method, *args)) or self

    class Session:
        readStream = Reader()  # noqa: N815 (the PySpark attribute it stands in for)

    raw = catalog["raw_images"]
    FileStreamDataset(
        filepath=raw["filepath"], checkpoint=raw["checkpoint"], source=raw["source"]
    ).new_files(Session())
    assert calls[:2] == [("format", "cloudFiles"), ("option", "cloudFiles.format", "binaryFile")]
    assert ("load", f"{volume}/01_raw/images") in calls
    assert calls[-1] == ("select", "path", "modificationTime", "length")  # never the bytes

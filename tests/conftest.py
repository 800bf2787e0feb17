"""Shared fixtures: one local Delta-enabled Spark session for the whole run, copies of the project,
and one project copy where the default pipeline has run on the sample data."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Nothing in the suite may wait on the network for telemetry or usage statistics.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pyspark.testing's DataFrame comparisons import pandas-on-Spark, which asks for this on driver and
# workers (inherited) and warns when it is unset.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# Every Spark JVM the suite starts (its own session and those of the `kedro run` processes it
# starts, which inherit the variable) compiles with C1 only and collects with one thread: the
# suite's JVMs live for seconds to minutes on tiny data, where the optimising compiler's threads
# cost more CPU than they return. An ingestion run alone: 79 -> 50 CPU-seconds, 49 -> 43 s
# (tests/README.md). spark-submit adds the variable to the driver JVM's options.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
# ... and evaluates expressions interpreted, without generating and compiling Java for each query
# (whole-stage and expression code generation): on the suite's tiny tables compiling costs more
# than it saves. Spark's own test suites run in both modes; the answers are the same.
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    "--conf spark.sql.codegen.wholeStage=false --conf spark.sql.codegen.factoryMode=NO_CODEGEN "
    "pyspark-shell",
)


# Session fixtures that cost a pipeline run or a build: under pytest-xdist (`make test` runs the
# suite on several workers) every test that uses one runs on the same worker, so it is built once.
SHARED_FIXTURES = ("trained_project", "built_package")
# The groups that take longest, longest first (worker-seconds of `make test` on 2 workers, measured
# with `--durations` and per-group sums: trained_project ~270, the concurrency module ~185, the
# stand-in module ~115, built_package ~55, the terminal module ~35). They start first, each on a
# free worker, and the short groups fill the gaps: the suite ends when its longest worker ends.
LONGEST_GROUPS = (
    "trained_project",
    "tests/test_concurrency.py",
    "tests/test_databricks_env.py",
    "built_package",
    "tests/test_terminal.py",
)


def test_group(item: pytest.Item) -> str:
    """The pytest-xdist group of a test: its ``SHARED_FIXTURES`` entry, else its module."""
    shared = [name for name in SHARED_FIXTURES if name in item.fixturenames]
    return shared[0] if shared else item.nodeid.split("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist would hand out groups by their number of tests (``--loadscope-reorder``):
    the handful of long whole-run tests would start last and end last. The suite's own order
    (``LONGEST_GROUPS`` first, then collection order) is kept instead."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for ``--dist loadgroup``: the tests of one module stay together (their
    module fixtures are built once), and so do all the users of a ``SHARED_FIXTURES`` entry.
    The ``LONGEST_GROUPS`` come first (the order pytest-xdist hands groups out). The users of
    the ``spark`` fixture are marked ``spark`` (``make check`` leaves them out: no JVM starts).

    ``tryfirst``: pytest-xdist reads the marks in its own hook of the same name, which would
    otherwise run first (this conftest is registered before xdist's worker plugin) and see none:
    every test would be its own group and module fixtures would be built on every worker."""
    rank = {group: position for position, group in enumerate(LONGEST_GROUPS)}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(test_group(item)))
        if "spark" in item.fixturenames:
            item.add_marker(pytest.mark.spark)
    items.sort(key=lambda item: rank.get(test_group(item), len(rank)))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every MLflow run of the suite goes to a throw-away store, never the project's."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(autouse=True)
def _mlflow_registry_follows_the_suite_store() -> Iterator[None]:
    """``mlflow.set_registry_uri`` (called by every Kedro run's tracking set-up) is process-wide:
    a test that points it elsewhere — the Unity Catalog stand-in, a fake remote registry — must
    not leave the next tests talking to that registry. After each test it follows the tracking
    store (the suite's) again."""
    yield
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_registry_uri(None)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The project's own session builder with the project's spark.yml, sized for tests."""
    from keras_lakehouse.platform.spark import get_or_create_spark

    config = yaml.safe_load((PROJECT_ROOT / "conf/base/spark.yml").read_text())
    config |= {
        "spark.master": "local[2]",
        "spark.sql.shuffle.partitions": 2,
        "spark.default.parallelism": 2,
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse")),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={tmp_path_factory.mktemp('derby')}"
        ),
    }
    session = get_or_create_spark(config, app_name="keras-lakehouse-tests")
    yield session
    session.stop()


# The sample the suite runs on: every special and bad file of the full sample, fewer good ones.
SAMPLE_SIZES = {"images_per_label": 60, "texts_per_label": 60}
# The least that passes the bronze quality suites (>= 30 images, >= 100 texts): for runs that
# test what happens to files (concurrency, kills, Unity Catalog placement), not what models learn.
SMALL_SAMPLE = {"images_per_label": 10, "texts_per_label": 40}
TEST_CONF = PROJECT_ROOT / "conf" / "test"


def copy_project(target: Path, env: str = "base", *, small: bool = True) -> Path:
    """The project's own configuration in ``target``, with a fresh data folder and no ``src``
    (the installed package is used). ``env`` names an extra conf folder to copy.

    With ``small`` (the default), the ``test`` environment's sizes (conf/test: small images,
    narrow models, few epochs) go into the env the copy runs in (``conf/local``, or ``env``), so
    ``kedro run`` and ``python -m keras_lakehouse`` in the copy run the test sizes as they are."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, target / name)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", target / "conf" / "base")
    if env not in ("base", "local"):
        shutil.copytree(PROJECT_ROOT / "conf" / env, target / "conf" / env)
    run_env = target / "conf" / ("local" if env == "base" else env)
    run_env.mkdir(exist_ok=True)
    if small:
        shutil.copy(TEST_CONF / "parameters.yml", run_env / "parameters_test_sizes.yml")
        if env in ("base", "local"):  # the databricks env uses the session it finds
            shutil.copy(TEST_CONF / "spark.yml", run_env / "spark.yml")
    (target / "src").mkdir()
    return target


def generate_sample(raw: Path, *, seed: int = 42, small: bool = False):
    """The suite's sample data in ``raw`` (``SAMPLE_SIZES``; ``small``: ``SMALL_SAMPLE``):
    returns its summary."""
    from keras_lakehouse.sample_data import generate

    return generate(raw, seed=seed, **(SMALL_SAMPLE if small else SAMPLE_SIZES))


def kedro_run(project: Path, *, env: str | None = None, runtime_params=None, **run_args) -> None:
    """``kedro run`` in-process on a project copy (the caller chdirs into it)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=env, runtime_params=runtime_params
    ) as session:
        session.run(**run_args)


@pytest.fixture(scope="session")
def run_kedro() -> Callable[..., None]:
    """``kedro_run`` for test modules (conftest is not importable under importlib mode)."""
    return kedro_run


@pytest.fixture(scope="session")
def sample_data() -> Callable[..., object]:
    """``generate_sample`` for test modules: ``sample_data(raw_folder, seed=42, small=False)``."""
    return generate_sample


def spark_file_uri(path: Path) -> str:
    """A local file's path as Spark's file sources write it (``file:/...``, percent-encoded)."""
    return path.as_uri().replace("file:///", "file:/")


@pytest.fixture(scope="session")
def spark_uri() -> Callable[[Path], str]:
    """``spark_file_uri`` for test modules (conftest is not importable under importlib mode)."""
    return spark_file_uri


@pytest.fixture(scope="session")
def file_log(spark, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., object]:
    """``file_log(raw_folder)``: the folder's file log as the ingestion nodes receive it (a
    ``FileStreamDataset`` with a fresh checkpoint), and ``file_log.known_images`` /
    ``file_log.known_texts``: empty bronze frames (no earlier run)."""
    from keras_lakehouse.datasets import FileStreamDataset

    def load(root: Path) -> object:
        checkpoint = tmp_path_factory.mktemp("file_log")
        return FileStreamDataset(filepath=str(root), checkpoint=str(checkpoint)).load()

    load.known_images = lambda: spark.createDataFrame([], "key string, path string")
    load.known_texts = lambda: spark.createDataFrame([], "id string, source string, line int")
    return load


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A factory of fresh project copies: ``project_copy(env="base")``."""

    def make(env: str = "base", *, small: bool = True) -> Path:
        return copy_project(tmp_path_factory.mktemp("project"), env, small=small)

    return make


@pytest.fixture(scope="session")
def trained_project(spark, project_copy) -> tuple[Path, object]:
    """A project copy where the default pipeline (ingestion → … → evaluation) ran once on the
    sample data. Returns the project path and the sample data summary. Read-only for tests:
    a test that changes it must use its own copy."""
    project = project_copy()
    summary = generate_sample(project / "data/01_raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        kedro_run(project)
    return project, summary


@pytest.fixture(scope="session")
def built_package(tmp_path_factory: pytest.TempPathFactory):
    """``kedro package`` (what ``make package`` runs) on a copy of the working tree, built once
    per session. Returns ``.wheel``, ``.conf`` (the conf tarball), ``.project`` (the copy it was
    built from) and ``.seconds``. A failed build fails the tests that use it, with its output."""
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    project = tmp_path_factory.mktemp("package") / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, project / name)

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".pyc"))}
        if Path(folder).name == "local":  # personal overrides and credentials stay home
            skipped |= {n for n in names if n.endswith((".yml", ".yaml"))}
        return skipped

    shutil.copytree(PROJECT_ROOT / "src", project / "src", ignore=ignore)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=ignore)

    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kedro", "package"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"`kedro package` did not finish in {error.timeout} s.")
    seconds = time.monotonic() - started
    wheels = sorted((project / "dist").glob("keras_lakehouse-*.whl"))
    conf = project / "dist" / "conf-keras_lakehouse.tar.gz"
    if result.returncode != 0 or len(wheels) != 1 or not conf.is_file():
        pytest.fail(
            f"`kedro package` failed (exit {result.returncode}); expected one wheel and "
            f"{conf.name} in dist/. Received: {[p.name for p in wheels]}.\n"
            f"--- output ---\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return SimpleNamespace(wheel=wheels[0], conf=conf, project=project, seconds=seconds)


def uv_pip_install(
    python: Path, arguments: list[str], *, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``uv pip install ARGUMENTS`` into ``python``'s environment, from uv's cache alone first:
    ``make setup`` filled it with the lock's wheels and index pages, and asking PyPI again costs
    ~15 CPU-seconds of index parsing per install. Online when the cache lacks something.
    Returns the last attempt (the caller checks its return code)."""
    uv = Path(sys.executable).parent / "uv"
    command = [str(uv), "pip", "install", "--quiet", "--python", str(python), *arguments]
    run = functools.partial(
        subprocess.run, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    done = run([*command, "--offline"])
    return done if done.returncode == 0 else run(command)


@pytest.fixture(scope="session")
def pip_install() -> Callable[..., subprocess.CompletedProcess]:
    """``uv_pip_install`` for test modules (conftest is not importable under importlib mode)."""
    return uv_pip_install


@pytest.fixture(scope="session")
def tiny_text_model() -> tuple:
    """A tiny compiled LSTM and its serving spec (vocabulary "goal", "code"; labels a, b): the
    cheapest model to log, register and load in registry tests."""
    from keras_lakehouse.serving.mlflow_model import ServingSpec
    from keras_lakehouse.training.models import build_lstm, compile_model

    model = compile_model(
        build_lstm(vocabulary_size=4, sequence_length=3, num_classes=2, units=4, embedding_dim=4),
        optimizer="adam",
        learning_rate=0.01,
    )
    spec = ServingSpec.from_label_map(
        "text", {"a": 0, "b": 1}, sequence_length=3, vocabulary=["", "[UNK]", "goal", "code"]
    )
    return model, spec


@pytest.fixture(scope="session")
def log_tiny_model(tiny_text_model) -> Callable[..., tuple[str, str]]:
    """``log_tiny_model(experiment)`` logs ``tiny_text_model`` as the raw-input model in a new
    MLflow run of ``experiment``: returns the run id and the model URI."""
    import mlflow
    import pandas as pd

    from keras_lakehouse.serving.mlflow_model import log_serving_model

    model, spec = tiny_text_model

    def log(experiment: str = "tiny-models") -> tuple[str, str]:
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            info = log_serving_model(model, spec, pd.DataFrame({"text": ["goal", "code"]}))
        return run.info.run_id, info.model_uri

    return log


def race_promotions(
    name: str, logged: dict[float, tuple[str, str]], values: dict[str, float]
) -> tuple[dict[float, dict], list[BaseException]]:
    """``register_and_promote`` for every ``logged`` model (value → run id, model URI) at once,
    all measuring the same champion before any moves the alias (``values``: run id → metric).
    Returns the reports by value and the errors (a thread still running after 120 s is one)."""
    import threading

    import mlflow

    from keras_lakehouse.serving import registry

    client = mlflow.MlflowClient()
    all_measured = threading.Barrier(len(logged), timeout=60)
    reports: dict[float, dict] = {}
    errors: list[BaseException] = []

    def evaluate(value: float) -> None:
        measured: list[str] = []

        def champion_metric(version: str) -> float:
            if not measured:
                all_measured.wait()
            measured.append(version)
            return values[client.get_model_version(name, version).run_id]

        run_id, uri = logged[value]
        try:
            reports[value] = registry.register_and_promote(
                name=name, model_uri=uri, run_id=run_id, metric="macro_f1", value=value,
                floor=0.8, min_delta=0.01, champion_metric=champion_metric,
            )  # fmt: skip
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=evaluate, args=(value,)) for value in logged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors += [
        TimeoutError(f"{thread.name} still running") for thread in threads if thread.is_alive()
    ]
    return reports, errors


@pytest.fixture(scope="session")
def race_two_evaluations() -> Callable[..., tuple[dict[float, dict], list[BaseException]]]:
    """``race_promotions`` for test modules (conftest is not importable under importlib mode)."""
    return race_promotions

"""Project settings: hooks, config loader and catalog wiring.

See https://docs.kedro.org/en/stable/kedro_project_setup/settings.html

Kedro imports this module before it loads a pipeline, so it also sets up what a run prints, with
conf/logging.yml (the terminal reads like a report, the log file under data/ keeps everything)
and ``keras_lakehouse/__init__.py`` (TensorFlow's C++ log lines).
"""

import logging
import os
import warnings

# MLflow's artifact downloads draw no progress bars, here and in the Spark Python workers (they
# inherit the environment). An explicit value in the environment wins.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from kedro.config import OmegaConfigLoader

from keras_lakehouse.hooks import (
    FullRefreshHooks,
    MlflowHooks,
    ParameterValidationHooks,
    SparkHooks,
)
from keras_lakehouse.platform.env_settings import env_setting
from keras_lakehouse.run_summary import RunSummaryHooks
from keras_lakehouse.terminal import (
    MessageFilter,
    TerminalHooks,
    ensure_log_folders,
    filter_terminal,
)

# Warnings go through logging, so they reach the log file too and the terminal in its format
# (what Kedro's default RichHandler does, which conf/logging.yml does not use).
logging.captureWarnings(True)
ensure_log_folders()
# Kedro logs two lines as a node completes ("Completed node: image.train_cnn", "Completed 17 out of
# 23 tasks") and advice on --async at the start: the terminal shows one line per node start and
# finish, the log file everything.
filter_terminal(r"^(Completed node: |Using synchronous mode for loading and saving data)")
# MLflow's database migrations ("Migration complete!") log from loggers named after their files,
# with no common prefix for conf/logging.yml to route: kept off the terminal by their source.
filter_terminal(r"[/\\]mlflow[/\\]store[/\\]db_migrations[/\\]", source=True)

# Known upstream warnings that say nothing a user of this project can act on. Each filter names
# the message and the module that warns; every other warning is shown.
# Kedro 1.7's OmegaConfigLoader calls OmegaConf.register_new_resolver, which OmegaConf 2.4
# deprecates: Kedro's to change, several times per run.
warnings.filterwarnings(
    "ignore",
    message=r"register_new_resolver\(\) is deprecated",
    category=UserWarning,
    module=r"kedro\.config\.omegaconf_config",
)
# MLflow asks for type hints on the `predict` of a PythonModel (serving/serving_model.py) whenever
# a model is logged or loaded; the project logs its models with an explicit signature. MLflow shows
# that warning under its own warnings filter (catch_warnings + simplefilter "once"), which
# filterwarnings cannot override: it is dropped on its way to logging instead. Type hints on
# KerasClassifier.predict would make it (and this filter) go.
logging.getLogger("py.warnings").addFilter(
    MessageFilter(r"Add type hints to the `predict` method to enable data validation")
)

# pluggy calls hooks in reverse order of registration: parameters are validated first, so a
# typo fails in milliseconds instead of after the Spark session has started. TerminalHooks runs
# its before_pipeline_run first (tryfirst); the summary is logged after a successful run.
HOOKS = (
    MlflowHooks(),
    SparkHooks(),
    ParameterValidationHooks(),
    FullRefreshHooks(),
    TerminalHooks(),
    RunSummaryHooks(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env's parameter file (conf/local/parameters_training.yml with `training: {cnn: {epochs:
    # 2}}`) overrides only the keys it names, as does `--params training.cnn.epochs=2`; the default
    # (destructive) merge would drop the rest of the section.
    "merge_strategy": {"parameters": "soft"},
    # ``${env:KL_CATALOG}`` in any config file; an unset variable fails at start-up, naming it.
    "custom_resolvers": {"env": env_setting},
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
        "mlflow": ["mlflow*", "mlflow*/**"],
        # Great Expectations suites live in conf/<env>/expectations/*.yml and are read as
        # parameters (``params:expectations.<table>``) so each env can override them.
        "parameters": [
            "parameters*",
            "parameters*/**",
            "**/parameters*",
            "expectations/*",
        ],
    },
}

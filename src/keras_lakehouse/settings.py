"""Project settings: hooks, config loader and catalog wiring.

See https://docs.kedro.org/en/stable/kedro_project_setup/settings.html
"""

from kedro.config import OmegaConfigLoader

from keras_lakehouse.hooks import MlflowHooks, ParameterValidationHooks, SparkHooks
from keras_lakehouse.platform.env_settings import env_setting

# pluggy calls hooks in reverse order of registration: parameters are validated first, so a
# typo fails in milliseconds instead of after the Spark session has started.
HOOKS = (MlflowHooks(), SparkHooks(), ParameterValidationHooks())

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

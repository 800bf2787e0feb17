"""Settings that come from the environment (``${env:NAME}`` in conf), checked at start-up.

The Databricks environment takes its Unity Catalog names from environment variables
(``KL_CATALOG``, ``KL_SCHEMA``, ...), so one wheel runs against any catalog. A variable that is
not set must stop ``kedro run`` before anything starts, naming the variable, rather than surface
later as a table-not-found inside a node.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

UNITY_CATALOG_GLOBALS = "unity_catalog"
_NO_DEFAULT = object()


class MissingSettingError(ValueError):
    """An environment variable the configuration needs is not set."""


def env_setting(name: str, default: Any = _NO_DEFAULT, *, _node_: Any = None) -> Any:
    """OmegaConf resolver ``${env:NAME}`` / ``${env:NAME,default}``.

    Kedro's own ``oc.env`` only works in credentials; this one works in every config file, and an
    unset (or empty) variable without a default raises naming the variable and the key that
    needs it.

    Args:
        name: The environment variable.
        default: Used when the variable is unset or empty; without it, that is an error.
        _node_: Filled in by OmegaConf: the config node being resolved (for the message).

    Returns:
        The variable's value, or ``default``.

    Raises:
        MissingSettingError: The variable is unset or empty and there is no default.
    """
    value = os.environ.get(name)
    if value:
        return value
    if default is not _NO_DEFAULT:
        return default
    key = _full_key(_node_)
    needed_by = f" (needed by the config key `{key}`)" if key else ""
    raise MissingSettingError(
        f"Environment variable {name} is not set{needed_by}. Set it in the job's environment "
        f"(databricks.yml) or your shell, e.g. `export {name}=...`. Received: {name}="
        f"{value!r}."
    )


def check_unity_catalog(spark: Any, global_values: Mapping[str, Any]) -> None:
    """Fail at start-up when the configured Unity Catalog schema or Volume does not exist.

    Does nothing outside the Databricks environment (no ``unity_catalog`` in the globals).

    Args:
        spark: The active Spark session.
        global_values: The resolved ``globals`` config.

    Raises:
        ValueError: Naming the schema or Volume folder that is missing and the variables
            that chose it.
    """
    names = global_values.get(UNITY_CATALOG_GLOBALS)
    if not names:
        return
    schema = f"{names['catalog']}.{names['schema']}"
    if not spark.catalog.databaseExists(schema):
        raise ValueError(
            f"Unity Catalog schema {schema} does not exist (KL_CATALOG={names['catalog']!r}, "
            f"KL_SCHEMA={names['schema']!r}). Create it (CREATE SCHEMA {schema}) or fix the "
            "variables."
        )
    volume_root = str(global_values["volume_root"])
    if not os.path.isdir(volume_root):
        raise ValueError(
            f"Volume folder {volume_root} does not exist (KL_VOLUME_ROOT, or "
            "/Volumes/<KL_CATALOG>/<KL_SCHEMA>/<KL_VOLUME>). Create the Volume "
            f"(CREATE VOLUME {schema}.<name>) or fix the variables."
        )
    logger.info("Unity Catalog: tables in %s, files under %s", schema, volume_root)


def _full_key(node: Any) -> str:
    try:
        return str(node._get_full_key(None))
    except Exception:
        return ""

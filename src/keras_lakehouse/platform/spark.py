"""One place that knows how to get a Delta-enabled Spark session, locally or on Databricks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession

from keras_lakehouse.platform.jars import delta_jars

logger = logging.getLogger(__name__)

DATABRICKS_RUNTIME_VARIABLE = "DATABRICKS_RUNTIME_VERSION"
LOOPBACK_ADDRESS = "127.0.0.1"


def on_databricks() -> bool:
    """Tell whether this process runs on a Databricks cluster (the runtime sets the variable)."""
    return bool(os.environ.get(DATABRICKS_RUNTIME_VARIABLE))


def get_or_create_spark(config: Mapping[str, Any], *, app_name: str) -> SparkSession:
    """Return the cluster's session on Databricks, else build a local Delta-enabled one.

    On Databricks nothing is built or configured: the cluster owns its session (and its
    settings), so ``config`` is ignored and the running session is returned as it is. Nothing in
    the project ever calls ``spark.stop()``: on a cluster that would end the session for every
    notebook and job attached to it.

    Locally the settings come from ``conf/<env>/spark.yml``. Delta's jars are pinned by SHA-256
    (``keras_lakehouse.platform.jars``): fetched once into ``~/.cache/keras_lakehouse/jars``,
    verified at every start and passed as ``spark.jars``, with no resolver (no
    ``spark.jars.packages``). A config that already sets ``spark.jars`` (jars fetched by hand, for
    an offline machine) is used as it is.

    Args:
        config: Spark properties, e.g. ``{"spark.master": "local[*]"}``.
        app_name: Name shown in Spark's logs.

    Returns:
        The active ``SparkSession``.
    """
    if on_databricks():
        logger.info("Databricks runtime detected: using the cluster's Spark session.")
        # A bare getOrCreate() attaches to the cluster's session: no options are passed to it.
        return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()

    # The driver and its block manager must never bind to a public interface.
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK_ADDRESS)
    # Python workers run the interpreter (and virtual environment) of the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    for key, value in config.items():
        builder = builder.config(key, _spark_value(value))
    if "spark.jars" not in config:
        # Before the JVM starts: a mismatch or a bad jar fails here, with its reason.
        builder = builder.config("spark.jars", ",".join(str(path) for path in delta_jars()))
    session = builder.getOrCreate()
    logger.info(
        "Local Spark %s session ready (master=%s).", session.version, session.sparkContext.master
    )
    return session


def active_session(purpose: str) -> SparkSession:
    """The active session, or an error saying who needed one and how to get it.

    Args:
        purpose: What needs the session, for the message (e.g. "Reading the raw files").
    """
    session = SparkSession.getActiveSession()
    if session is None:
        raise RuntimeError(
            f"{purpose} needs an active Spark session. Received: none. The project's SparkHooks "
            "start one with every Kedro session; in a script, call "
            "keras_lakehouse.spark.get_or_create_spark first."
        )
    return session


def _spark_value(value: Any) -> str:
    """Spark properties are strings; YAML gives booleans and numbers."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)

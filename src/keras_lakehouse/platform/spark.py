"""One place that knows how to get a Delta-enabled Spark session, locally or on Databricks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from keras_lakehouse.platform.jars import CACHE_VARIABLE, DEFAULT_CACHE, delta_jars

logger = logging.getLogger(__name__)

DATABRICKS_RUNTIME_VARIABLE = "DATABRICKS_RUNTIME_VERSION"
LOOPBACK_ADDRESS = "127.0.0.1"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
# The local JVM's logging (log4j 2): Spark's own default profile at level WARN, less what is noise
# on every start. With no configuration of its own, Spark prints which profile and level it uses
# ("Using Spark's default log4j profile", "Setting default log level to WARN", "To adjust logging
# level use sc.setLogLevel", "Setting Spark log level"); Hadoop warns that it has no native
# library (none is needed locally); a long query plan's text is shortened with a warning.
LOG4J2_PROPERTIES = """\
# Written by keras_lakehouse.platform.spark for local Spark sessions; rewritten when it differs.
status = error
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %-7p %c{1}: %m%n%ex
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.plan.name = org.apache.spark.sql.catalyst.util.SparkStringUtils
logger.plan.level = error
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
logger.jetty2.name = org.sparkproject.jetty.util.component.AbstractLifeCycle
logger.jetty2.level = error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = warn
logger.metastore.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.metastore.level = fatal
logger.hive_functionregistry.name = org.apache.hadoop.hive.ql.exec.FunctionRegistry
logger.hive_functionregistry.level = error
logger.parquet.name = org.apache.parquet.CorruptStatistics
logger.parquet.level = error
logger.parquet2.name = parquet.CorruptStatistics
logger.parquet2.level = error
logger.stream.name = org.apache.spark.sql.execution.streaming.ResolveWriteToStream
logger.stream.level = error
logger.rdd.name = org.apache.spark.rdd.MapPartitionsRDD
logger.rdd.level = error
"""


def tasks_for_rows(rows: int, rows_per_task: int) -> int:
    """``ceil(rows / rows_per_task)``, at least one: the tasks for work whose every task pays a
    fixed start (a Python worker importing TensorFlow, a model load), so that a small input is
    one task instead of one per core. Coalescing to it never adds partitions."""
    return max(1, -(-rows // rows_per_task))


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
    ``spark.jars.packages``, so no Ivy resolution report, ever). A config that already sets
    ``spark.jars`` (jars fetched by hand, for an offline machine) is used as it is. The JVM logs
    warnings and errors only, without Spark's start-up notes (``LOG4J2_PROPERTIES``), unless
    ``spark.driver.extraJavaOptions`` or ``$SPARK_CONF_DIR`` configures log4j already.

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
    java_options = _with_quiet_jvm_logging(str(config.get(JAVA_OPTIONS, "")))
    if java_options:
        builder = builder.config(JAVA_OPTIONS, java_options)
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


def _with_quiet_jvm_logging(java_options: str) -> str:
    """``java_options`` with log4j 2 pointed at ``LOG4J2_PROPERTIES``, written to the jars'
    cache folder; as they are when log4j is configured elsewhere or the file cannot be written
    (Spark's default profile then applies, start-up notes included)."""
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if "log4j" in java_options or (
        conf_dir and os.path.exists(os.path.join(conf_dir, "log4j2.properties"))
    ):
        return java_options
    path = Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser() / "log4j2.properties"
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != LOG4J2_PROPERTIES:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.part")
            partial.write_text(LOG4J2_PROPERTIES, encoding="utf-8")
            partial.replace(path)  # whole or not at all, for a session starting meanwhile
    except OSError as error:
        logger.debug("Spark keeps its default log4j profile: %s not written (%s).", path, error)
        return java_options
    return f"{java_options} -Dlog4j2.configurationFile={path.as_uri()}".strip()


@contextmanager
def session_conf(spark: SparkSession, key: str, value: str | None) -> Iterator[None]:
    """Set a Spark SQL conf for the duration of one write, then restore it (``None``: unchanged)."""
    if value is None:
        yield
        return
    previous = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)

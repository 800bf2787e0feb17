"""What a ``kedro run`` prints besides Kedro's own lines: conf/logging.yml stays in charge while a
pipeline runs (MLflow's logging goes through it too), and known noise is kept off the terminal
(the log file under data/ still gets it). TensorFlow's C++ log lines: ``keras_lakehouse/__init__``.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import os
import re
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class TerminalHooks:
    """Keep the run's logging as conf/logging.yml configured it while a pipeline runs.

    MLflow 3.0's SQLite store runs Alembic's migrations whenever it opens the database (its
    table check never passes since MLflow 3.0 added tables), and Alembic's ``env.py`` calls
    ``logging.config.fileConfig`` on MLflow's ``alembic.ini``: that replaces the root logger's
    handlers (the terminal format and the log file are lost mid-run) and prints Alembic's
    migration lines. While a pipeline runs, that one call is skipped (mlflow/mlflow#19038, fixed
    in MLflow 3.7, which leaves logging alone when ``MLFLOW_CONFIGURE_LOGGING`` is false).
    """

    def __init__(self) -> None:
        self._routed_mlflow = False

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Before the other hooks: ``MlflowHooks`` imports MLflow and opens its store."""
        keep_logging_configuration()
        self._routed_mlflow = route_mlflow_logging()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._release()

    def _release(self) -> None:
        """Undo what ``before_pipeline_run`` changed in this process (a later session, a test,
        a subprocess started afterwards find it as it was)."""
        release_logging_configuration()
        if self._routed_mlflow:
            os.environ.pop(MLFLOW_CONFIGURE_LOGGING, None)
            self._routed_mlflow = False


# The trailing parts of MLflow's own alembic.ini (mlflow/store/db_migrations/alembic.ini).
MLFLOW_ALEMBIC_INI = ("mlflow", "store", "db_migrations", "alembic.ini")


def keep_logging_configuration() -> None:
    """Make ``logging.config.fileConfig`` skip MLflow's ``alembic.ini`` (other files still
    configure logging); idempotent, undone by ``release_logging_configuration``."""
    current = logging.config.fileConfig
    if hasattr(current, "skips_mlflow"):
        return

    @functools.wraps(current)
    def file_config(fname: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(fname, str | os.PathLike) and Path(fname).parts[-4:] == MLFLOW_ALEMBIC_INI:
            logger.debug("Kept the run's logging configuration: skipped fileConfig(%s).", fname)
            return None
        return current(fname, *args, **kwargs)

    file_config.skips_mlflow = True  # type: ignore[attr-defined]
    logging.config.fileConfig = file_config


def release_logging_configuration() -> None:
    """Undo ``keep_logging_configuration``."""
    current = logging.config.fileConfig
    if hasattr(current, "skips_mlflow"):
        logging.config.fileConfig = current.__wrapped__  # type: ignore[attr-defined]


MLFLOW_CONFIGURE_LOGGING = "MLFLOW_CONFIGURE_LOGGING"


def route_mlflow_logging() -> bool:
    """Have MLflow, when this process imports it next, log through conf/logging.yml (its
    warnings to the terminal, everything to the log file) instead of a terminal handler of its own;
    say whether ``MLFLOW_CONFIGURE_LOGGING`` was set for that (an explicit value wins).

    Set once the Spark JVM runs, whose Python workers inherit its environment: they keep MLflow's
    own handler, which mutes the notes MLflow logs while it imports (``Union type hint ... is
    inferred as AnyType``; in this process conf/logging.yml sends them to the log file).
    """
    if MLFLOW_CONFIGURE_LOGGING in os.environ:
        return False
    os.environ[MLFLOW_CONFIGURE_LOGGING] = "false"
    return True


class MessageFilter(logging.Filter):
    """Drop the records whose message matches ``pattern`` (known noise), or with ``source``, the
    records logged from a file whose path matches it (modules without a common logger name)."""

    def __init__(self, pattern: str, *, source: bool = False) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)
        self.source = source

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.pathname if self.source else record.getMessage())


def filter_terminal(pattern: str, *, source: bool = False, handler_name: str = "terminal") -> None:
    """Keep the records that ``MessageFilter(pattern, source=source)`` drops off the terminal
    handler of conf/logging.yml (the root's handler named ``handler_name``); the log file still
    gets them. Idempotent."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == handler_name and not any(
            isinstance(existing, MessageFilter)
            and (existing.pattern.pattern, existing.source) == (pattern, source)
            for existing in handler.filters
        ):
            handler.addFilter(MessageFilter(pattern, source=source))


def ensure_log_folders() -> None:
    """Create the folder of each log file of the root logger when it is missing
    (``data/08_reporting`` is in every clone, by its ``.gitkeep``; without it, every log line
    would print a logging error)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            Path(handler.baseFilename).parent.mkdir(parents=True, exist_ok=True)

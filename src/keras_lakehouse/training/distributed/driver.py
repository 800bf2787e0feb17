"""The driver's role: launch one barrier stage of TensorFlow workers and check what comes back.

Runs in the Kedro process (the Spark driver). The tasks themselves run
``keras_lakehouse.training.distributed.barrier_task``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_lakehouse.platform.spark import active_session
from keras_lakehouse.training.distributed.barrier_task import run_barrier_task
from keras_lakehouse.training.distributed.contract import (
    HISTORY_FILE,
    MODEL_FILE,
    WorkerPlan,
    WorkerReport,
    remove_tree,
)
from keras_lakehouse.training.progress import History, log_early_stop, log_epochs

if TYPE_CHECKING:
    import keras

    from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
    from keras_lakehouse.training.spec import TrainingJob

logger = logging.getLogger(__name__)

CHECKSUM_RTOL = 1e-5
CHECKSUM_ATOL = 1e-6


def train_multi_worker(
    job: TrainingJob,
    snapshot: DeltaSnapshot,
    *,
    num_workers: int,
    model_dir: str | None = None,
    allow_open_grpc_ports_locally: bool = False,
) -> tuple[keras.Model, History]:
    """Train ``job`` with ``MultiWorkerMirroredStrategy`` across Spark barrier tasks.

    Each worker reads its own shard of the train split, runs the same number of steps per epoch
    and evaluates the whole validation split after each epoch. Training stops early on
    ``val_loss`` (``job.fit.early_stopping_patience``) and the best weights are restored. Once
    the workers are done, the chief's epochs are logged here, one line each.

    Args:
        job: What to train (``job.build`` is called inside the strategy's scope).
        snapshot: The pinned Delta snapshot; every worker reads its Parquet files directly.
        num_workers: TensorFlow workers, one per Spark task slot.
        model_dir: Directory of the driver (e.g. a Volume path) where the chief's model
            (``model.keras``) and the history (``history.json``) are kept. ``None``: a temporary
            directory, removed once the model is loaded.
        allow_open_grpc_ports_locally: On a local Spark master, train only when this is set:
            each worker's gRPC server listens on every interface, unauthenticated.

    Returns:
        The trained model, loaded in this process, and its history per epoch (``loss``,
        ``accuracy``, ``val_loss``, ``val_accuracy``).

    Raises:
        RuntimeError: No active Spark session, a worker failed, or the workers' weights differ.
        ValueError: ``num_workers`` is not positive or exceeds the session's task slots.
    """
    import keras

    spark = active_session("Multi-worker training (Spark barrier tasks)")
    loopback = spark.sparkContext.master.startswith("local")
    if loopback and not allow_open_grpc_ports_locally:
        raise ValueError(
            "training.strategy=multi_worker on a local Spark master would open unauthenticated, "
            "unencrypted TensorFlow gRPC ports on every network interface of this machine "
            "(0.0.0.0, hard-coded in TensorFlow) while training runs. Set "
            "training.allow_open_grpc_ports_locally=true to accept that on a trusted network, "
            "or use strategy default/mirrored here and multi_worker on a cluster."
        )
    check_task_slots(num_workers, spark.sparkContext.defaultParallelism)
    plan = WorkerPlan(
        payload=_pickle((job, snapshot)),
        num_workers=num_workers,
        loopback=loopback,
        dtype_policy=keras.config.dtype_policy().name,
    )
    reports, model_file = _run_barrier_stage(spark.sparkContext, plan)
    check_in_sync(reports)
    log_run(job.name, reports, epochs=job.fit.epochs)
    history = reports[0].history
    directory = Path(model_dir or tempfile.mkdtemp(prefix="keras-lakehouse-model-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(model_file)
        (directory / HISTORY_FILE).write_text(json.dumps(history))
        model = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
    finally:
        if model_dir is None:
            remove_tree(directory)
    return model, history


def check_task_slots(num_workers: int, task_slots: int) -> None:
    """Fail fast when a barrier stage of ``num_workers`` tasks cannot be scheduled.

    Spark would otherwise keep retrying the stage for minutes before giving up.

    Args:
        num_workers: The barrier tasks wanted.
        task_slots: The session's task slots (``sparkContext.defaultParallelism``).

    Raises:
        ValueError: ``num_workers`` is below 1 or above ``task_slots``.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1. Received: num_workers={num_workers}")
    if num_workers > task_slots:
        raise ValueError(
            f"num_workers={num_workers} needs {num_workers} Spark task slots; this session has "
            f"{task_slots} (sparkContext.defaultParallelism). Lower training.num_workers or give "
            f"the cluster more cores. Received: num_workers={num_workers}"
        )


def check_in_sync(reports: Sequence[WorkerReport]) -> None:
    """Check that every worker ended with the chief's weights (checksums within 1e-5 relative).

    Args:
        reports: One report per worker.

    Raises:
        RuntimeError: No report came back, or some worker's checksum differs from the chief's.
    """
    if not reports:
        raise RuntimeError("Expected one report per worker. Received: none")
    chief = min(reports, key=lambda report: report.index)
    apart = [
        report
        for report in reports
        if not math.isclose(
            report.checksum, chief.checksum, rel_tol=CHECKSUM_RTOL, abs_tol=CHECKSUM_ATOL
        )
    ]
    if apart:
        received = {report.index: report.checksum for report in reports}
        raise RuntimeError(
            "Expected every worker to end with the chief's weights (weight checksums equal "
            f"within {CHECKSUM_RTOL} relative); the workers fell out of sync. "
            f"Received checksums by worker: {received}"
        )


def _pickle(value: Any) -> bytes:
    """cloudpickle, so that builders defined in notebooks or tests travel by value."""
    from pyspark import cloudpickle

    return cloudpickle.dumps(value)


def _run_barrier_stage(context: Any, plan: WorkerPlan) -> tuple[list[WorkerReport], bytes]:
    """The workers' reports, by index, and the bytes of the chief's ``.keras`` file."""
    logger.info("Starting %d TensorFlow workers as Spark barrier tasks.", plan.num_workers)
    rows = (
        context.parallelize(range(plan.num_workers), plan.num_workers)
        .barrier()
        .mapPartitions(functools.partial(run_barrier_task, plan))
        .collect()
    )
    model_files = [row.pop("model_file") for row in rows if row["index"] == 0]
    if len(model_files) != 1 or len(rows) != plan.num_workers:
        raise RuntimeError(
            f"Expected {plan.num_workers} worker reports, one from the chief with its model. "
            f"Received: {len(rows)} reports, {len(model_files)} from the chief"
        )
    reports = sorted((WorkerReport(**row) for row in rows), key=lambda report: report.index)
    return reports, model_files[0]


def log_run(name: str, reports: Sequence[WorkerReport], *, epochs: int) -> None:
    """Log a finished run once, from the chief's report: one line per epoch, then early stopping.

    The workers' own logs go to DEBUG.

    Args:
        name: The model.
        reports: Every worker's report, the chief's (index 0) first.
        epochs: The most epochs the run could take.
    """
    chief = reports[0]
    logger.info("%s: trained on workers %s", name, [report.address for report in reports])
    for report in reports:
        logger.debug("%s: worker %d output:\n%s", name, report.index, report.output)
    log_epochs(name, chief.history, chief.epoch_seconds, epochs=epochs)
    if chief.stopped_early:
        log_early_stop(name, stopped_after=chief.epochs_run, best_epoch=chief.best_epoch)

"""Multi-worker training: one TensorFlow worker per Spark barrier task, one custom train step.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
each worker runs its own loop: a ``strategy.run`` step that all-reduces the gradients, then a full
pass over the validation split. Identical weights give identical validation numbers, hence the
same early-stopping decision on every worker, which keeps the collectives in step.

Layout of one run::

    driver ── barrier stage of ``num_workers`` Spark tasks ── each task: ``allGather`` of the
    addresses, then a fresh Python process with ``TF_CONFIG`` set before TensorFlow starts.

The fresh process matters: Spark reuses its Python workers, and TensorFlow configures its collective
runtime once per process. The chief (worker 0) saves the model as a ``.keras`` file, whose bytes
come back to the driver with the task results (no filesystem shared with the executors is needed;
the file must fit ``spark.driver.maxResultSize``); the driver loads it, after checking that every
worker ended with the same weights.

BatchNormalization's moving statistics are updated by each worker from its own batches; they are
averaged across the workers after every epoch (exact for exponential moving averages).

Network: the workers' addresses are 127.0.0.1 in local mode (the executors' hosts on a cluster),
but TensorFlow's gRPC server always listens on every interface (``0.0.0.0:<port>``, unencrypted,
hard-coded in TensorFlow), for as long as training runs: use it on a trusted network only.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import keras

    from keras_lakehouse.training.job import TrainingJob
    from keras_lakehouse.training.loader import DeltaSnapshot

from keras_lakehouse.platform.spark import active_session

logger = logging.getLogger(__name__)

History = dict[str, list[float]]

LOOPBACK_ADDRESS = "127.0.0.1"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
CHECKSUM_RTOL = 1e-5
CHECKSUM_ATOL = 1e-6
COLLECTIVE_TIMEOUT_S = 600.0  # a collective still waiting after this long aborts the run
OUTPUT_TAIL_CHARS = 4000


@dataclass(frozen=True)
class WorkerPlan:
    """What every barrier task receives from the driver (small and picklable)."""

    payload: bytes  # cloudpickled ``(job, snapshot)``, opened only in the training process
    num_workers: int
    loopback: bool  # local master: every worker on 127.0.0.1
    dtype_policy: str


@dataclass(frozen=True)
class WorkerReport:
    """What each worker sends back to the driver."""

    index: int
    address: str
    checksum: float  # sum of every model weight, to check that the workers stayed in sync
    epochs_run: int
    history: History
    output: str = ""  # the end of the worker's log, logged by the driver at DEBUG


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
    ``val_loss`` (``job.fit.early_stopping_patience``) and the best weights are restored.

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
    _log_run(job.name, reports)
    history = reports[0].history
    directory = Path(model_dir or tempfile.mkdtemp(prefix="keras-lakehouse-model-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(model_file)
        (directory / HISTORY_FILE).write_text(json.dumps(history))
        model = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
    finally:
        if model_dir is None:
            _remove_tree(directory)
    return model, history


def check_task_slots(num_workers: int, task_slots: int) -> None:
    """Fail fast when a barrier stage of ``num_workers`` tasks cannot be scheduled.

    Spark would otherwise keep retrying the stage for minutes before giving up.

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


def tf_config(addresses: Sequence[str], index: int) -> dict[str, Any]:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses`` (``host:port``)."""
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


# --- Driver side ---------------------------------------------------------------------------------


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
        .mapPartitions(functools.partial(_barrier_task, plan))
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


def _log_run(name: str, reports: Sequence[WorkerReport]) -> None:
    chief = reports[0]
    logger.info("%s: workers %s", name, [report.address for report in reports])
    for report in reports:
        logger.debug("%s: worker %d output:\n%s", name, report.index, report.output)
    logger.info("%s: %d epoch(s) run on %d workers.", name, chief.epochs_run, len(reports))
    for epoch in range(chief.epochs_run):
        metrics = {key: chief.history[key][epoch] for key in HISTORY_KEYS}
        logger.info("%s: epoch %d %s", name, epoch + 1, _describe_epoch(metrics))


def _describe_epoch(metrics: dict[str, float]) -> str:
    return " ".join(f"{key}={value:.4f}" for key, value in metrics.items())


def _remove_tree(directory: Path) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


# --- Spark task side: runs in a Spark Python worker, which never imports TensorFlow -------------


def _barrier_task(plan: WorkerPlan, _partition: Iterator[int]) -> Iterator[dict[str, Any]]:
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    index = context.partitionId()
    host = LOOPBACK_ADDRESS if plan.loopback else _task_host(context, index)
    addresses = context.allGather(f"{host}:{_free_port(host)}")
    gpus = context.resources().get("gpu")
    yield _run_training_process(plan, index, addresses, gpus.addresses if gpus else None)


def _task_host(context: Any, index: int) -> str:
    """The executor's host, from Spark's ``host:port`` address of this task."""
    return context.getTaskInfos()[index].address.rsplit(":", 1)[0]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _run_training_process(
    plan: WorkerPlan, index: int, addresses: Sequence[str], gpus: Sequence[str] | None
) -> dict[str, Any]:
    """Run worker ``index`` in a fresh interpreter (``TF_CONFIG`` set before TF starts)."""
    from pyspark import SparkFiles

    # Under Spark's per-application folder, which Spark removes even when the task was killed.
    scratch_root = SparkFiles.getRootDirectory()
    with tempfile.TemporaryDirectory(prefix=f"worker-{index}-", dir=scratch_root) as scratch:
        folder = Path(scratch)
        (folder / "payload.pkl").write_bytes(plan.payload)
        spec = {
            "index": index,
            "num_workers": plan.num_workers,
            "dtype_policy": plan.dtype_policy,
            "parent_pid": os.getpid(),
            "folder": scratch,
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        environment = {
            **os.environ,
            "TF_CONFIG": json.dumps(tf_config(addresses, index)),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        }
        if gpus is not None:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        with (folder / "output.log").open("w") as output:
            status = subprocess.call(
                [sys.executable, "-m", __name__, str(folder / "spec.json")],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        report_file = folder / "report.json"
        tail = (folder / "output.log").read_text(errors="replace")[-OUTPUT_TAIL_CHARS:]
        if status != 0 or not report_file.exists():
            raise RuntimeError(
                f"Expected TensorFlow worker {index} ({addresses[index]}) to finish. Received: "
                f"exit status {status}. Last output:\n{tail}"
            )
        report = {**json.loads(report_file.read_text()), "address": addresses[index]}
        if index == 0:
            report["model_file"] = (folder / MODEL_FILE).read_bytes()
        return {**report, "output": tail}


# --- Training process side ----------------------------------------------------------------------


def _main(spec_file: str) -> None:
    """One training process (``python -m keras_lakehouse.training.distributed SPEC``)."""
    import pickle

    spec = json.loads(Path(spec_file).read_text())
    folder = Path(spec["folder"])
    _exit_with_parent(spec["parent_pid"], folder)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    job, snapshot = pickle.loads((folder / "payload.pkl").read_bytes())
    report = _train_worker(
        job,
        snapshot,
        index=spec["index"],
        num_workers=spec["num_workers"],
        folder=folder,
        dtype_policy=spec["dtype_policy"],
    )
    report_file = folder / "report.json"
    report_file.with_suffix(".tmp").write_text(json.dumps(report))
    report_file.with_suffix(".tmp").rename(report_file)


def _exit_with_parent(parent_pid: int, folder: Path) -> None:
    """Exit when the Spark task that started this process is gone (e.g. killed by Spark).

    The task's scratch ``folder`` is removed first: a killed task cannot clean it up itself.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        _remove_tree(folder)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _train_worker(
    job: TrainingJob,
    snapshot: DeltaSnapshot,
    *,
    index: int,
    num_workers: int,
    folder: Path,
    dtype_policy: str,
) -> dict[str, Any]:
    """Train on shard ``index``; the chief saves the model in ``folder``. Returns the report."""
    import keras

    keras.config.set_dtype_policy(dtype_policy)
    keras.utils.set_random_seed(job.seed)
    strategy = _strategy()
    with strategy.scope():
        model = job.build()
        model.optimizer.build(model.trainable_variables)
    train_data, val_data = job.datasets(snapshot, shard=(index, num_workers))
    steps = job.steps_per_epoch(snapshot, workers=num_workers)
    loop = _Loop(strategy, model, train_data, val_data, job.fit.batch_size * num_workers)
    history = fit_epochs(
        loop, steps=steps, epochs=job.fit.epochs, patience=job.fit.early_stopping_patience
    )
    if index == 0:
        model.save(folder / MODEL_FILE)  # no collectives: the other workers need not save
    loop.barrier()  # nobody leaves (and drops out of the cluster) before the chief has saved
    return {
        "index": index,
        "checksum": _checksum(model),
        "epochs_run": len(history["loss"]),
        "history": history,
    }


def _strategy() -> Any:
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO,
        timeout_seconds=COLLECTIVE_TIMEOUT_S,
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


class _Loop:
    """The compiled train step, evaluation and barrier of one worker."""

    def __init__(
        self, strategy: Any, model: Any, train_data: Any, val_data: Any, global_batch: int
    ) -> None:
        import keras
        import tensorflow as tf

        self.model = model
        self._strategy = strategy
        self._loss = keras.losses.SparseCategoricalCrossentropy(reduction=None)
        self._global_batch = global_batch
        self._train = iter(train_data.repeat())
        self._val_data = val_data
        self._train_step = tf.function(
            self._distributed_step, input_signature=[*train_data.element_spec]
        )
        self._eval_step = tf.function(self._totals, input_signature=[*val_data.element_spec])
        self._barrier = tf.function(self._all_reduce_one)
        self._state = [
            variable
            for variable in model.non_trainable_variables
            if keras.backend.is_float_dtype(variable.dtype)
        ]
        self._average_state = tf.function(self._average_state_step)

    def train_epoch(self, steps: int) -> dict[str, float]:
        """``steps`` synchronous steps; loss and accuracy over every worker's examples."""
        totals = (0.0, 0.0, 0.0)
        for _ in range(steps):
            x, y = next(self._train)
            totals = _add(totals, self._train_step(x, y))
        if self._state:
            self._average_state()
        return _rates(*totals)

    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy over the whole validation split (no collectives)."""
        totals = (0.0, 0.0, 0.0)
        for x, y in self._val_data:
            totals = _add(totals, self._eval_step(x, y))
        return _rates(*totals)

    def barrier(self) -> None:
        """Wait for every worker (a one-element all-reduce)."""
        self._barrier()

    def _distributed_step(self, x: Any, y: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        per_replica = self._strategy.run(self._replica_step, args=(x, y))
        return tuple(
            self._strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for value in per_replica
        )

    def _replica_step(self, x: Any, y: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        model, optimizer = self.model, self.model.optimizer
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            per_example = self._loss(y, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self._global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return _sums(y, probabilities, per_example)

    def _totals(self, x: Any, y: Any) -> tuple[Any, Any, Any]:
        probabilities = self.model(x, training=False)
        return _sums(y, probabilities, self._loss(y, probabilities))

    def _average_state_step(self) -> None:
        """Average the float non-trainable variables (BatchNormalization's moving statistics).

        Each worker updates them from its own batches; they are exponential moving averages,
        linear in the batch statistics, so averaging once per epoch equals averaging every step.
        """
        import tensorflow as tf

        def average() -> list[Any]:
            values = [tf.identity(variable.value) for variable in self._state]
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.MEAN, values)

        means = self._strategy.experimental_local_results(self._strategy.run(average))[0]
        for variable, mean in zip(self._state, means, strict=True):
            variable.assign(mean)

    def _all_reduce_one(self) -> Any:
        import tensorflow as tf

        one = self._strategy.run(lambda: tf.constant(1.0))
        return self._strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)


def _sums(y: Any, probabilities: Any, per_example: Any) -> tuple[Any, Any, Any]:
    """Loss sum, correct predictions and example count of one batch (float32 scalars)."""
    import tensorflow as tf

    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    correct = tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(y, tf.int32)), tf.float32))
    count = tf.cast(tf.size(y), tf.float32)
    return tf.reduce_sum(tf.cast(per_example, tf.float32)), correct, count


def _add(totals: tuple[float, ...], values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(total + float(value) for total, value in zip(totals, values, strict=True))


def _rates(loss_sum: float, correct: float, count: float) -> dict[str, float]:
    if count == 0:
        raise RuntimeError("Expected at least one example in the split. Received: 0 rows")
    return {"loss": loss_sum / count, "accuracy": correct / count}


class EpochLoop(Protocol):
    """What ``fit_epochs`` drives: a model, one training epoch, one validation pass."""

    model: Any

    def train_epoch(self, steps: int) -> dict[str, float]: ...

    def evaluate(self) -> dict[str, float]: ...


def fit_epochs(loop: EpochLoop, *, steps: int, epochs: int, patience: int) -> History:
    """Run epochs of ``steps`` steps, early stopping on ``val_loss``, like Keras' callback.

    Training stops once ``val_loss`` has not improved for ``patience`` epochs (never after the
    first epoch). Unlike ``EarlyStopping(restore_best_weights=True)``, the best weights are
    restored even when every epoch ran.

    Returns:
        ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy`` per epoch run.
    """
    history: History = {key: [] for key in HISTORY_KEYS}
    best_loss, best_weights, wait = math.inf, None, 0
    for epoch in range(epochs):
        train = loop.train_epoch(steps)
        val = loop.evaluate()
        for key, value in {**train, **{f"val_{k}": v for k, v in val.items()}}.items():
            history[key].append(value)
        logger.info(
            "epoch %d: %s", epoch + 1, _describe_epoch({k: v[-1] for k, v in history.items()})
        )
        if val["loss"] < best_loss:
            best_loss, best_weights, wait = val["loss"], loop.model.get_weights(), 0
            continue
        wait += 1
        if wait >= patience and epoch > 0:
            logger.info("Early stopping after epoch %d (best val_loss %.4f).", epoch + 1, best_loss)
            break
    if best_weights is not None:
        loop.model.set_weights(best_weights)
    return history


def _checksum(model: Any) -> float:
    import numpy as np

    return float(sum(np.sum(weights, dtype=np.float64) for weights in model.get_weights()))


if __name__ == "__main__":
    _main(sys.argv[1])

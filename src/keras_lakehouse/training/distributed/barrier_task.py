"""The barrier task's role: one Spark task per TensorFlow worker, on an executor.

Runs in a Spark Python worker, which never imports TensorFlow: it gathers every task's address
(``allGather``), then starts the training process, a fresh interpreter running
``python -m keras_lakehouse.training.distributed.worker``, with ``TF_CONFIG`` set before
TensorFlow starts. The fresh process matters: Spark reuses its Python workers, and TensorFlow
configures its collective runtime once per process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keras_lakehouse.platform.spark import LOOPBACK_ADDRESS
from keras_lakehouse.training.distributed.contract import (
    LAUNCH_FILE,
    MODEL_FILE,
    OUTPUT_FILE,
    OUTPUT_TAIL_CHARS,
    PAYLOAD_FILE,
    REPORT_FILE,
    WorkerPlan,
)

# The training process's module, run with ``python -m`` (a sibling of this module).
WORKER_MODULE = f"{__package__}.worker"


def tf_config(addresses: Sequence[str], index: int) -> dict[str, Any]:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses`` (``host:port``).

    Args:
        addresses: Every worker's ``host:port``, by index.
        index: This worker's index.

    Returns:
        The value to serialize into the ``TF_CONFIG`` environment variable.
    """
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def run_barrier_task(plan: WorkerPlan, _partition: Iterator[int]) -> Iterator[dict[str, Any]]:
    """The body of one barrier task (``mapPartitions``): train, then yield the report as a row.

    Args:
        plan: What the driver sent every task.
        _partition: The task's partition (its index, unused: the task context tells).

    Yields:
        One row: the training process's report, its address and output tail, and for the chief
        the bytes of its ``.keras`` file (``model_file``).
    """
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
        (folder / PAYLOAD_FILE).write_bytes(plan.payload)
        launch = {
            "index": index,
            "num_workers": plan.num_workers,
            "dtype_policy": plan.dtype_policy,
            "parent_pid": os.getpid(),
            "folder": scratch,
        }
        (folder / LAUNCH_FILE).write_text(json.dumps(launch))
        environment = {
            **os.environ,
            "TF_CONFIG": json.dumps(tf_config(addresses, index)),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        }
        if gpus is not None:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        with (folder / OUTPUT_FILE).open("w") as output:
            status = subprocess.call(
                [sys.executable, "-m", WORKER_MODULE, str(folder / LAUNCH_FILE)],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        report_file = folder / REPORT_FILE
        tail = (folder / OUTPUT_FILE).read_text(errors="replace")[-OUTPUT_TAIL_CHARS:]
        if status != 0 or not report_file.exists():
            raise RuntimeError(
                f"Expected TensorFlow worker {index} ({addresses[index]}) to finish. Received: "
                f"exit status {status}. Last output:\n{tail}"
            )
        report = {**json.loads(report_file.read_text()), "address": addresses[index]}
        if index == 0:
            report["model_file"] = (folder / MODEL_FILE).read_bytes()
        return {**report, "output": tail}

"""What the three process roles of a multi-worker run hand each other, and nothing else.

::

    driver ── WorkerPlan ──▶ barrier task ── launch.json, payload.pkl ──▶ training process
    driver ◀── WorkerReport ── barrier task ◀── report.json, model.keras ── training process

Plain Python (no Spark, no TensorFlow), so that every role can import it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_lakehouse.training.progress import History

MODEL_FILE = "model.keras"  # the chief's model, in the task's scratch folder and in model_dir
HISTORY_FILE = "history.json"  # the chief's history, beside the model in model_dir
LAUNCH_FILE = "launch.json"  # what one training process is (index, cluster size, ...)
PAYLOAD_FILE = "payload.pkl"  # the cloudpickled ``(job, snapshot)``
REPORT_FILE = "report.json"  # what the training process found (``WorkerReport`` less the task's)
OUTPUT_FILE = "output.log"  # the training process's stdout and stderr
OUTPUT_TAIL_CHARS = 4000  # of the output, sent back to the driver


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
    history: History
    epoch_seconds: list[float]  # how long each epoch took on this worker
    best_epoch: int  # the epoch whose weights were kept, from 1 (0: none improved)
    stopped_early: bool
    output: str = ""  # the end of the worker's log, logged by the driver at DEBUG

    @property
    def epochs_run(self) -> int:
        """How many epochs ran."""
        return len(self.epoch_seconds)


def remove_tree(directory: Path) -> None:
    """Remove ``directory`` and everything in it, quietly when it is already gone."""
    shutil.rmtree(directory, ignore_errors=True)

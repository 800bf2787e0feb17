"""The training process's role: one TensorFlow worker of ``MultiWorkerMirroredStrategy``.

Started by a barrier task as ``python -m keras_lakehouse.training.distributed.worker LAUNCH``
with ``TF_CONFIG`` set. It trains its shard with the custom step of
``keras_lakehouse.training.distributed.loop`` (Keras 3's ``fit`` fails under this strategy,
keras-team/keras#20585), and writes its report; the chief (worker 0) also saves the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_lakehouse.training.distributed.contract import (
    MODEL_FILE,
    PAYLOAD_FILE,
    REPORT_FILE,
    remove_tree,
)
from keras_lakehouse.training.distributed.epochs import fit_epochs
from keras_lakehouse.training.distributed.loop import WorkerLoop

if TYPE_CHECKING:
    from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshot
    from keras_lakehouse.training.spec import TrainingJob

COLLECTIVE_TIMEOUT_S = 600.0  # a collective still waiting after this long aborts the run


def main(launch_file: str) -> None:
    """Run one training process from its launch file, and write its report beside it.

    Args:
        launch_file: The JSON written by the barrier task (index, cluster size, dtype policy,
            the task's pid and the scratch folder holding the payload).
    """
    launch = json.loads(Path(launch_file).read_text())
    folder = Path(launch["folder"])
    _exit_with_parent(launch["parent_pid"], folder)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    job, snapshot = pickle.loads((folder / PAYLOAD_FILE).read_bytes())
    report = train_worker(
        job,
        snapshot,
        index=launch["index"],
        num_workers=launch["num_workers"],
        folder=folder,
        dtype_policy=launch["dtype_policy"],
    )
    report_file = folder / REPORT_FILE
    report_file.with_suffix(".tmp").write_text(json.dumps(report))
    report_file.with_suffix(".tmp").rename(report_file)


def _exit_with_parent(parent_pid: int, folder: Path) -> None:
    """Exit when the Spark task that started this process is gone (e.g. killed by Spark).

    The task's scratch ``folder`` is removed first: a killed task cannot clean it up itself.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        remove_tree(folder)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def train_worker(
    job: TrainingJob,
    snapshot: DeltaSnapshot,
    *,
    index: int,
    num_workers: int,
    folder: Path,
    dtype_policy: str,
) -> dict[str, Any]:
    """Train on shard ``index``; the chief saves the model in ``folder``.

    Args:
        job: What to train.
        snapshot: The pinned Delta snapshot.
        index: This worker's index (0: the chief).
        num_workers: Workers in the cluster.
        folder: The task's scratch folder.
        dtype_policy: The driver's Keras dtype policy.

    Returns:
        The report (``WorkerReport`` less what the barrier task adds), JSON-serializable.
    """
    import keras

    keras.config.set_dtype_policy(dtype_policy)
    keras.utils.set_random_seed(job.seed)
    strategy = _strategy()
    with strategy.scope():
        model = job.build()
        model.optimizer.build(model.trainable_variables)
    train_data, val_data = job.datasets(snapshot, shard=(index, num_workers))
    steps = job.steps_per_epoch(snapshot, workers=num_workers)
    loop = WorkerLoop(strategy, model, train_data, val_data, job.fit.batch_size * num_workers)
    result = fit_epochs(
        loop,
        name=job.name,
        steps=steps,
        epochs=job.fit.epochs,
        patience=job.fit.early_stopping_patience,
    )
    if index == 0:
        model.save(folder / MODEL_FILE)  # no collectives: the other workers need not save
    loop.barrier()  # nobody leaves (and drops out of the cluster) before the chief has saved
    return {"index": index, "checksum": _checksum(model), **dataclasses.asdict(result)}


def _strategy() -> Any:
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO,
        timeout_seconds=COLLECTIVE_TIMEOUT_S,
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _checksum(model: Any) -> float:
    import numpy as np

    return float(sum(np.sum(weights, dtype=np.float64) for weights in model.get_weights()))


if __name__ == "__main__":
    main(sys.argv[1])

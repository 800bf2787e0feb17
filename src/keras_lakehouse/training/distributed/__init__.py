"""Multi-worker training: one TensorFlow worker per Spark barrier task, one custom train step.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
each worker runs its own loop: a ``strategy.run`` step that all-reduces the gradients, then a full
pass over the validation split. One module per process role, plus what they share::

    driver.py        the Kedro process: a barrier stage of ``num_workers`` Spark tasks, then the
                     workers' reports checked and the chief's epochs logged
    barrier_task.py  each Spark task: ``allGather`` of the addresses, then a fresh Python process
                     with ``TF_CONFIG`` set before TensorFlow starts
    worker.py        that process (``python -m keras_lakehouse.training.distributed.worker``),
                     training with ``loop.py``'s compiled steps and ``epochs.py``'s epoch loop
    contract.py      what the roles hand each other (plan, report, file names)

The chief (worker 0) saves the model as a ``.keras`` file, whose bytes come back to the driver
with the task results (no filesystem shared with the executors is needed; the file must fit
``spark.driver.maxResultSize``); the driver loads it, after checking that every worker ended with
the same weights.

This package's ``__init__`` leaves out ``worker`` and ``loop`` (TensorFlow's side), so that the
Spark Python workers that import ``barrier_task`` never start TensorFlow, and ``python -m`` runs
the worker module fresh.

Network: the workers' addresses are 127.0.0.1 in local mode (the executors' hosts on a cluster),
but TensorFlow's gRPC server always listens on every interface (``0.0.0.0:<port>``, unencrypted,
hard-coded in TensorFlow), for as long as training runs: use it on a trusted network only.
"""

from keras_lakehouse.training.distributed.barrier_task import WORKER_MODULE, tf_config
from keras_lakehouse.training.distributed.contract import (
    HISTORY_FILE,
    MODEL_FILE,
    WorkerPlan,
    WorkerReport,
)
from keras_lakehouse.training.distributed.driver import (
    check_in_sync,
    check_task_slots,
    log_run,
    train_multi_worker,
)
from keras_lakehouse.training.distributed.epochs import (
    HISTORY_KEYS,
    EpochLoop,
    FitResult,
    fit_epochs,
)

__all__ = [
    "HISTORY_FILE",
    "HISTORY_KEYS",
    "MODEL_FILE",
    "WORKER_MODULE",
    "EpochLoop",
    "FitResult",
    "WorkerPlan",
    "WorkerReport",
    "check_in_sync",
    "check_task_slots",
    "fit_epochs",
    "log_run",
    "tf_config",
    "train_multi_worker",
]

"""The trained model's predictions over the test split of a pinned silver snapshot.

The Keras model reads the snapshot's Parquet files directly (``training.loader``), in file order;
the report's keys are read separately with ``read_split``, and ``check_alignment`` proves that
both reads saw the rows in the same order before any key is paired with a prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from keras_lakehouse.training.loader import DeltaSnapshot, iter_batches, local_path

if TYPE_CHECKING:
    import keras

PREDICT_BATCH = 256


def predict_test_split(
    model: keras.Model, snapshot: DeltaSnapshot, decode: Any, *, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True class indices and predicted probabilities over the test split.

    Args:
        model: The trained Keras model.
        snapshot: The silver table, pinned at a version.
        decode: Turns a record batch into model input and labels (``ImageColumns``,
            ``TextColumns``).
        keep: How many of the first test inputs to return too (for a picture); 0 for none.

    Returns:
        The true indices, the probabilities (one row per test row) and the first ``keep`` inputs.

    Raises:
        ValueError: When the test split is empty.
    """
    files = [local_path(name) for name in snapshot.files]
    truths, outputs, kept = [], [], []
    for x, y in iter_batches(files, decode, batch_size=PREDICT_BATCH, split="test"):
        truths.append(y)
        outputs.append(np.asarray(model.predict(x, verbose=0)))
        if sum(len(part) for part in kept) < keep:
            kept.append(np.array(x[:keep]))
    if not truths:
        raise ValueError(
            f"Expected test rows in {snapshot.location} v{snapshot.version}. Received: an empty "
            f"test split."
        )
    first = np.concatenate(kept)[:keep] if kept else np.zeros((0,))
    return np.concatenate(truths), np.concatenate(outputs), first


def check_alignment(read: np.ndarray, decoded: np.ndarray, snapshot: DeltaSnapshot) -> None:
    """Fail unless the labels read with the keys are the labels the predictions were made for.

    Args:
        read: The label indices read with the keys (``read_split``).
        decoded: The label indices of ``predict_test_split``.
        snapshot: The snapshot both were read from (for the message).

    Raises:
        RuntimeError: When the two reads differ in length or order.
    """
    if len(read) != len(decoded) or not np.array_equal(read, decoded):
        raise RuntimeError(
            f"The test split of {snapshot.location} v{snapshot.version} was read in two different "
            f"orders ({len(read)} and {len(decoded)} rows): the report would mislabel rows."
        )

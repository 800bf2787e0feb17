"""One worker's compiled steps: a ``strategy.run`` train step that all-reduces the gradients, a
full validation pass, and the barrier. Runs in the training process only.

Identical weights give identical validation numbers, hence the same early-stopping decision on
every worker (``fit_epochs``), which keeps the collectives in step. BatchNormalization's moving
statistics are updated by each worker from its own batches; they are averaged across the workers
after every epoch (exact for exponential moving averages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class WorkerLoop:
    """The compiled train step, evaluation and barrier of one worker (an ``EpochLoop``).

    Args:
        strategy: The ``MultiWorkerMirroredStrategy``.
        model: The compiled model, built in the strategy's scope, its optimizer built.
        train_data: This worker's shard of the train split (repeated here).
        val_data: The whole validation split.
        global_batch: The batch size summed over every worker.
    """

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

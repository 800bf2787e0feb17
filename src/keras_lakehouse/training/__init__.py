"""Training: what to train (``spec.TrainingJob``), how to run it (``job``: strategy, fit,
evaluate), the loader (Delta snapshot → tf.data), the model builders (``models``), one log line
per epoch (``progress``), and multi-worker training over Spark barrier tasks (``distributed``)."""

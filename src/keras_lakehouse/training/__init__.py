"""Training: the job (strategy, fit, evaluate), the loader (Delta snapshot → tf.data), the model
builders, and multi-worker training over Spark barrier tasks (``distributed``)."""

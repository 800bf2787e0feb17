"""Evaluation: classification metrics, the test-split predictions and report of a trained model,
the report figures, and the comparison with the registered champion."""

"""Evaluation: classification metrics from a confusion matrix, and the report figures."""

"""Keras Lakehouse: Kedro pipelines for deep learning on a Spark + Delta lakehouse."""

__version__ = "0.1.0"

"""Evaluation pipeline: metrics, plots and the registry gate."""

from keras_lakehouse.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]

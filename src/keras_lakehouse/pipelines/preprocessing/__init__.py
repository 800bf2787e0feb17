"""Preprocessing pipeline."""

from keras_lakehouse.pipelines.preprocessing.pipeline import create_pipeline

__all__ = ["create_pipeline"]

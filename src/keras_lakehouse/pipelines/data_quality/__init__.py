"""Data-quality pipeline."""

from keras_lakehouse.pipelines.data_quality.pipeline import create_pipeline

__all__ = ["create_pipeline"]

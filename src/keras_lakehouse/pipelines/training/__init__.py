"""Training pipeline."""

from keras_lakehouse.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]

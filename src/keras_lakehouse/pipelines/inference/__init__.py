"""Inference pipeline: batch scoring with the champion models."""

from keras_lakehouse.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]

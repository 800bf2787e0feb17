"""Deterministic synthetic raw data: labelled shape images and topical short texts
(``python -m keras_lakehouse.sample_data``)."""

from keras_lakehouse.sample_data.core import SampleSummary, generate, has_files, main

__all__ = ["SampleSummary", "generate", "has_files", "main"]

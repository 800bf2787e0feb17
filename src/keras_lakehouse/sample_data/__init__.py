"""Deterministic synthetic raw data: labelled shape images and topical short texts
(``python -m keras_lakehouse.sample_data``).

Modules, by what they write: ``images`` (good and special image files, drawn by ``shapes``),
``texts`` (``reviews.csv`` and ``extra.jsonl``, worded by ``sentences``), ``inference`` (the
unlabelled batch and ``expected.csv``); ``generator`` runs them all, ``cli`` is the command line,
``layout`` holds the folder names, defaults and random streams.
"""

from keras_lakehouse.sample_data.cli import main
from keras_lakehouse.sample_data.generator import SampleSummary, generate, has_files

__all__ = ["SampleSummary", "generate", "has_files", "main"]

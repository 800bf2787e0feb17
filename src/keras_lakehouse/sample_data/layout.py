"""Where the sample data goes, and which random stream each part of it draws from."""

from __future__ import annotations

from pathlib import Path

DEFAULT_OUTPUT = Path("data/01_raw")
DEFAULT_SEED = 42
DEFAULT_SCALE = 1
IMAGES_DIR = "images"
TEXTS_DIR = "texts"
# New, unlabelled files for `kedro run --pipelines=inference`; `expected.csv` beside them holds
# their true labels (for checking predictions; the pipeline never reads it).
INFERENCE_DIR = "inference"
IGNORED_MARKER = ".gitkeep"

# Independent random streams, so that changing one part never shifts the other.
IMAGE_STREAM = 1
TEXT_STREAM = 2
SPECIAL_STREAM = 3
INFERENCE_STREAM = 4

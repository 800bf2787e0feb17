"""The raw images of each scale of the scale benchmark, and the project copies that ingest them.

Under ``benchmarks/work/ingest/x<scale>/``: ``raw/`` (the seeded sample with ``images_per_label
= 300 × scale``: ×1 is the default sample; texts stay at their default size, the runs do not read
them), ``deliveries/d<k>/`` (the "+1 %" batches: 1 % of the good images, written by the same
generator with seed 42 + k, renamed ``new<k>_<label>_NNNNN.*`` so no name collides) and the
marker ``.bench-ready.json``. Generated once and reused while the marker matches the generator's
code; ``project/`` is a fresh copy of the project whose raw folder holds hard links to ``raw/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ROOT, WORK_DIR, copy_project, log

DATA_SEED = 42
IMAGES_PER_LABEL = 300  # the sample's default (keras_lakehouse.sample_data.images)
DELIVERY_SHARE = 0.01
READY_MARKER = ".bench-ready.json"
GENERATOR = ROOT / "src" / "keras_lakehouse" / "sample_data"
RAW_IMAGES = Path("data") / "01_raw" / "images"


def scale_dir(scale: int) -> Path:
    """The work folder of one scale."""
    return WORK_DIR / "ingest" / f"x{scale}"


def raw_images(scale: int) -> Path:
    """The generated raw image folder of one scale (what the floor scans)."""
    return scale_dir(scale) / "raw" / "images"


def project_dir(scale: int) -> Path:
    """The project copy of one scale, rebuilt for each full run."""
    return scale_dir(scale) / "project"


def delivery_per_label(scale: int) -> int:
    """Good images per label in one "+1 %" delivery."""
    return math.ceil(IMAGES_PER_LABEL * scale * DELIVERY_SHARE)


def count_files(folder: Path) -> int:
    """Files under ``folder``, recursively."""
    return sum(len(files) for _, _, files in os.walk(folder))


def _generator_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(GENERATOR.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare(scale: int, deliveries: int) -> dict[str, Any]:
    """Generate the raw images and ``deliveries`` "+1 %" batches of one scale, or reuse them."""
    from keras_lakehouse.sample_data import generate
    from keras_lakehouse.sample_data.images import write_good_images

    folder = scale_dir(scale)
    marker = folder / READY_MARKER
    expected = {
        "scale": scale,
        "seed": DATA_SEED,
        "images_per_label": IMAGES_PER_LABEL * scale,
        "deliveries": deliveries,
        "delivery_per_label": delivery_per_label(scale),
        "generator": _generator_fingerprint(),
    }
    started = time.perf_counter()
    reused = marker.is_file() and json.loads(marker.read_text()) == expected
    if reused:
        log(f"×{scale}: reusing the raw images in {folder}")
    else:
        log(f"×{scale}: generating {IMAGES_PER_LABEL * scale} good images per label in {folder}")
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder / "raw", seed=DATA_SEED, images_per_label=IMAGES_PER_LABEL * scale)
        count = delivery_per_label(scale)
        for index in range(1, deliveries + 1):
            target = folder / "deliveries" / f"d{index}"
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                write_good_images(Path(scratch), count=count, drawn=count, seed=DATA_SEED + index)
                for path in sorted(Path(scratch).rglob("*.*")):
                    renamed = target / path.parent.name / f"new{index}_{path.name}"
                    renamed.parent.mkdir(parents=True, exist_ok=True)
                    path.rename(renamed)
        marker.write_text(json.dumps(expected))
    seconds = time.perf_counter() - started
    return {
        "images": count_files(raw_images(scale)),
        "good_images_per_label": IMAGES_PER_LABEL * scale,
        "delivery_images": count_files(folder / "deliveries" / "d1"),
        "reused": reused,
        "setup_seconds": seconds,
    }


def fresh_project(scale: int) -> Path:
    """A new project copy whose raw image folder holds hard links to the scale's raw images."""
    project = project_dir(scale)
    shutil.rmtree(project, ignore_errors=True)
    copy_project(project)
    shutil.copytree(raw_images(scale), project / RAW_IMAGES, copy_function=os.link)
    return project


def deliver(scale: int, index: int) -> int:
    """Hard-link delivery ``index`` into the project's raw folder; the number of new files."""
    source = scale_dir(scale) / "deliveries" / f"d{index}"
    target = project_dir(scale) / RAW_IMAGES
    for path in sorted(source.rglob("*.*")):
        destination = target / path.relative_to(source)
        if destination.exists():
            raise RuntimeError(f"Delivery {index} would overwrite {destination}.")
        os.link(path, destination)
    return count_files(source)

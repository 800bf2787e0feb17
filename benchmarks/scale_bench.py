"""Scale benchmark: incremental ingestion, data quality and preprocessing at ×1, ×8 and ×32.

``make bench`` runs it after the loader benchmark (``make bench BENCH=scale`` alone; ``QUICK=1``
skips ×32). At each scale, every measured run is a fresh Python process (``scale_child.py``):

- **full**: a fresh project copy (empty ``data/02``+, no file log) over the scale's raw images,
  the ingestion, data_quality and preprocessing pipelines (image namespace), alternated with
- **floor**: Spark's bare ``binaryFile`` scan of the same files computing only ``sha2(content)``;
- then, in the project the last full run left, alternated: **no change** (the same run again)
  and **+1 %** (1 % new image files delivered into the raw folder, then the same run).

Results: ``benchmarks/results/scale-<timestamp>.{json,md}`` and ``scale-latest.{json,md}``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, WORK_DIR, alternate, log, machine, summarize, versions
from scale_data import (
    deliver,
    fresh_project,
    prepare,
    project_dir,
    raw_images,
    scale_dir,
)
from scale_procs import measure
from scale_report import render, write_results

SCALES = (1, 8, 32)
QUICK_SCALES = (1, 8)
LARGEST = 32  # measured once per side: its runs are the longest
# Repeats of each side at ×1 and ×8 (full and floor alternate, then no change and +1 %). One by
# default: one run of every side at the three scales takes ~9 minutes on a 2-core machine, the
# whole `make bench` ~13 (benchmarks/README.md), and a second repeat would pass the 15 minutes;
# `--repeats 3` gives spreads when there is time.
DEFAULT_REPEATS = 1
FULL, FLOOR, NO_CHANGE, PLUS_ONE = "full", "floor", "no change", "+1 %"
KINDS = (FULL, FLOOR, NO_CHANGE, PLUS_ONE)


class ScaleRuns:
    """The measured processes of one scale, each checked for doing the work it should."""

    def __init__(self, scale: int, images: int) -> None:
        """Keep the records of every kind of run."""
        self.scale = scale
        self.images = images
        self.records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        self.rows: dict[str, int] = {}  # the tables as the last run left them
        self.logs = scale_dir(scale) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _measure(self, kind: str, arguments: list[str]) -> dict[str, Any]:
        """``scale_child.py ARGUMENTS REPORT`` in the project copy; its log and report kept."""
        name = f"{kind.replace(' ', '-').replace('+1-%', 'plus1')}-{len(self.records[kind]) + 1}"
        report = self.logs / f"{name}.json"
        record = measure([*arguments, str(report)], project_dir(self.scale), self.logs / name)
        self.records[kind].append(record)
        return record

    def full(self) -> float:
        """A fresh project copy, all files new."""
        project = fresh_project(self.scale)
        record = self._measure(FULL, ["run", str(project)])
        self._check(record, new_files=self.images, fresh=True)
        return record["seconds"]

    def floor(self) -> float:
        """The bare scan of the same files."""
        arguments = ["floor", str(raw_images(self.scale)), str(project_dir(self.scale))]
        return self._measure(FLOOR, arguments)["seconds"]

    def no_change(self) -> float:
        """The same project run again."""
        record = self._measure(NO_CHANGE, ["run", str(project_dir(self.scale))])
        self._check(record, new_files=0)
        return record["seconds"]

    def plus_one(self) -> float:
        """The next "+1 %" delivery, then the same run."""
        delivered = deliver(self.scale, len(self.records[PLUS_ONE]) + 1)
        record = self._measure(PLUS_ONE, ["run", str(project_dir(self.scale))])
        self._check(record, new_files=delivered)
        return record["seconds"]

    def _check(self, record: dict[str, Any], *, new_files: int, fresh: bool = False) -> None:
        """The run checked exactly the new files, settled them, and silver follows bronze."""
        counts, rows = record["ingestion_counts"], record["rows"]
        before = dict.fromkeys(("bronze", "quarantine"), 0) if fresh else self.rows
        problems = []
        if counts["raw"] != new_files:
            problems.append(f"checked {counts['raw']} files, {new_files} were new")
        grown = sum(rows[name] - before[name] for name in ("bronze", "quarantine"))
        if grown != new_files:
            problems.append(f"bronze + quarantine grew by {grown}, {new_files} files were new")
        if rows["unsettled"]:
            problems.append(f"{rows['unsettled']} files left unsettled in the file log")
        if rows["silver"] != rows["bronze"]:
            problems.append(f"silver has {rows['silver']} rows, bronze {rows['bronze']}")
        if problems:
            raise RuntimeError(f"×{self.scale} run did the wrong work: {'; '.join(problems)}")
        self.rows = rows


def _median(records: list[dict[str, Any]], value: Any) -> float:
    return statistics.median(value(record) for record in records)


def summarize_scale(runs: ScaleRuns, setup: dict[str, Any]) -> dict[str, Any]:
    """Medians, spreads and ratios of one scale (every ratio is of two medians of this run)."""
    records, images = runs.records, runs.images
    full, floor = records[FULL], records[FLOOR]

    def seconds(kind: str) -> dict[str, Any]:
        return summarize([record["seconds"] for record in records[kind]])

    def stages(kind: str) -> dict[str, float]:
        names = list(records[kind][0]["stages"])
        found = {name: _median(records[kind], lambda r, n=name: r["stages"][n]) for name in names}
        return {"startup": _median(records[kind], lambda r: r["startup_seconds"])} | found

    ingestion_rate = summarize([images / r["stages"]["ingestion"] for r in full])
    floor_rate = summarize([r["files"] / r["stages"]["scan"] for r in floor])
    result: dict[str, Any] = {
        "data": setup,
        "images": images,
        "repeats": {kind: len(records[kind]) for kind in KINDS},
        "seconds": {kind: seconds(kind) for kind in KINDS},
        "stages": {kind: stages(kind) for kind in KINDS},
        "pipeline_rate": summarize([images / r["seconds"] for r in full]),
        "ingestion_rate": ingestion_rate,
        "floor_rate": floor_rate,
        "floor_files": floor[0]["files"],
        "ingestion_to_floor": ingestion_rate["median"] / floor_rate["median"],
        "driver_peak_mib": summarize([r["driver_peak_mib"] for r in full]),
        "tree_peak_mib": summarize([r["tree_peak_mib"] for r in full]),
        "driver_peak_any_run_mib": max(
            r["driver_peak_mib"] for kind in KINDS for r in records[kind]
        ),
        "runs": records,
    }
    full_median = result["seconds"][FULL]["median"]
    full_work = sum(v for k, v in result["stages"][FULL].items() if k != "startup")
    for kind in (NO_CHANGE, PLUS_ONE):
        work = sum(v for k, v in result["stages"][kind].items() if k != "startup")
        result[f"{kind} fraction"] = result["seconds"][kind]["median"] / full_median
        result[f"{kind} work fraction"] = work / full_work
    return result


def main(quick: bool = False, repeats: int = DEFAULT_REPEATS) -> int:
    """Set up the data, measure every scale (×32 once, the others ``repeats`` times), report."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1. Received: repeats={repeats}")
    started = time.perf_counter()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{WORK_DIR / 'mlflow.db'}"
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as the Makefile exports it
    scales = QUICK_SCALES if quick else SCALES
    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": quick,
        "repeats": repeats,
        "machine": machine(),
        "versions": versions(),
        "load_average_start": os.getloadavg(),
        "scales": {},
    }
    for scale in scales:
        count = 1 if scale == LARGEST else repeats
        setup = prepare(scale, deliveries=count)
        runs = ScaleRuns(scale, setup["images"])
        log(f"×{scale}: {setup['images']} images; full vs floor, {count} repeat(s)")
        alternate({FULL: runs.full, FLOOR: runs.floor}, count)
        log(f"×{scale}: no change vs +1 %, {count} repeat(s)")
        alternate({NO_CHANGE: runs.no_change, PLUS_ONE: runs.plus_one}, count)
        results["scales"][str(scale)] = summarize_scale(runs, setup)
    results["load_average_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - started
    report = render(results)
    path: Path = write_results(results, report, RESULTS_DIR)
    log(f"wrote {path} and scale-latest.json/scale-latest.md")
    print()
    print(report)
    return 0

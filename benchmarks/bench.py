"""Benchmark of the streaming Delta loader: input ratio, memory and Spark handoff.

Run ``make bench BENCH=loader`` (or ``.venv/bin/python benchmarks/bench.py --bench loader``;
``make bench`` runs this and ``scale_bench.py``). One run builds (or reuses) the
scale-1 and scale-8 silver tables under ``benchmarks/work/``, measures everything, prints a
markdown table and writes ``benchmarks/results/<timestamp>.{json,md}`` and ``latest.{json,md}``.

Two sides of a comparison are always measured alternately (A B A B ...), so that a noisy machine
slows both; every number is the median of the repeats, with the min–max spread beside it.

``--child MODE --snapshot FILE`` is internal: one memory measurement in a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
WORK_DIR = BENCH_DIR / "work"
RESULTS_DIR = BENCH_DIR / "results"

# ---- Data set-up -----------------------------------------------------------------------------
SMALL_SCALE = 1
LARGE_SCALE = 8
SCALES = (SMALL_SCALE, LARGE_SCALE)
DATA_SEED = 42
STAGES = ("ingestion", "data_quality", "preprocessing")
NAMESPACES = ("image",)  # only the image branch feeds images_silver
SILVER_TABLE = "data/05_model_input/images_silver"
READY_MARKER = ".bench-ready.json"  # written once the pipelines have built the silver table
# What the silver tables depend on: a work folder built from other sources is rebuilt.
FINGERPRINTED = (("conf/base", "*.yml"), ("src/keras_lakehouse", "*.py"))

# ---- Loader and model (the project's training defaults) ------------------------------------------
IMAGE_SIZE = 64
NUM_CLASSES = 3
TRAIN_BATCH = 32
SHUFFLE_BUFFER = 512
LOADER_SEED = 42
OPTIMIZER = "adam"
LEARNING_RATE = 0.002
TRAIN_SPLIT = "train"
HANDOFF_BATCH = 256

# ---- Repeats and goals -----------------------------------------------------------------------
INPUT_REPEATS = 15  # one epoch is ~1 s at scale 1: many short samples on a noisy machine
MEMORY_REPEATS = 3
HANDOFF_REPEATS = 7  # each streaming read is ~0.1 s: short, noisy samples
GOAL_INPUT_RATIO = 0.95
GOAL_MEMORY_RATIO = 1.25
KIB_PER_MIB = 1024  # VmHWM and ru_maxrss are in KiB on Linux
HIGH_WATER_FIELD = "VmHWM:"
CHILD_TIMEOUT_S = 300

CHILD_STREAM = "stream"  # iter_batches over one train epoch, no TensorFlow
CHILD_FIT = "fit"  # one CNN training epoch fed by to_tf_dataset
CHILD_MATERIALISE = "materialise"  # the whole train split concatenated in memory
CHILD_MODES = (CHILD_STREAM, CHILD_FIT, CHILD_MATERIALISE)

Summary = dict[str, Any]


# ---- Helpers -----------------------------------------------------------------------------------


def log(message: str) -> None:
    """One progress line, timestamped."""
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


def summarize(values: list[float]) -> Summary:
    """Median and spread of the repeats of one side."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def alternate(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, Summary]:
    """Run the sides in turn (A B A B ...) ``repeats`` times; summarize each side."""
    values: dict[str, list[float]] = {name: [] for name in sides}
    for index in range(repeats):
        for name, measure in sides.items():
            value = measure()
            values[name].append(value)
            log(f"  {name} #{index + 1}/{repeats}: {value:,.1f}")
    return {name: summarize(items) for name, items in values.items()}


def max_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``ru_maxrss`` is not enough on Linux: ``exec`` keeps the high-water mark of the process that
    forked it, so a child of this (large) benchmark process would report the parent's peak. The
    kernel's ``VmHWM`` belongs to the new program's own memory; ``ru_maxrss`` is the fallback
    where ``/proc`` is missing.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(HIGH_WATER_FIELD):
                return int(line.split()[1]) / KIB_PER_MIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def ru_maxrss_mib() -> float:
    """``getrusage``'s peak RSS (inherits the forking parent's peak on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def machine() -> dict[str, Any]:
    """CPU count, memory and platform of the machine the numbers come from."""
    meminfo = Path("/proc/meminfo")
    total_kib = 0
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(total_kib / KIB_PER_MIB / KIB_PER_MIB, 1),
        "cpu": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Installed versions of the libraries that the numbers depend on."""
    names = ("tensorflow", "keras", "pyspark", "delta-spark", "pyarrow", "numpy", "kedro")
    return {name: metadata.version(name) for name in names}


# ---- Data set-up -----------------------------------------------------------------------------


def copy_project(target: Path) -> None:
    """The project's configuration with a fresh data folder (as tests/test_full_run.py does)."""
    target.mkdir(parents=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(ROOT / name, target / name)
    shutil.copytree(ROOT / "conf" / "base", target / "conf" / "base")
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()  # the package itself is the installed one


def source_fingerprint() -> str:
    """A hash of ``conf/base`` and the package's code: a change to either rebuilds the data."""
    digest = hashlib.sha256()
    for folder, pattern in FINGERPRINTED:
        for path in sorted((ROOT / folder).rglob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare(scale: int) -> dict[str, Any]:
    """Build the silver image table of one scale, or reuse the one a previous run built."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from keras_lakehouse.sample_data import generate

    project = WORK_DIR / f"scale{scale}"
    marker = project / READY_MARKER
    expected = {"scale": scale, "seed": DATA_SEED, "sources": source_fingerprint()}
    started = time.perf_counter()
    if marker.is_file() and json.loads(marker.read_text()) == expected:
        log(f"scale {scale}: reusing the silver table in {project} (same conf and code)")
        return {"project": str(project), "reused": True, "seconds": 0.0}
    log(f"scale {scale}: generating raw data and running {', '.join(STAGES)} in {project}")
    shutil.rmtree(project, ignore_errors=True)
    copy_project(project)
    generate(project / "data" / "01_raw", scale=scale, seed=DATA_SEED)
    with contextlib.chdir(project):
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=list(STAGES), namespaces=list(NAMESPACES))
    marker.write_text(json.dumps(expected))
    seconds = time.perf_counter() - started
    log(f"scale {scale}: ready in {seconds:.0f} s")
    return {"project": str(project), "reused": False, "seconds": seconds}


def start_spark() -> Any:
    """The project's local Delta-enabled session, with its scratch folders under work/."""
    import yaml

    from keras_lakehouse.platform.spark import get_or_create_spark

    config = yaml.safe_load((ROOT / "conf" / "base" / "spark.yml").read_text())
    config |= {
        "spark.sql.warehouse.dir": str(WORK_DIR / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={WORK_DIR / 'derby'}",
    }
    return get_or_create_spark(config, app_name="keras-lakehouse-bench")


# ---- 1. Input ratio --------------------------------------------------------------------------


def build_model() -> Any:
    """The CNN of the project, compiled as training compiles it (no batch norm)."""
    from keras_lakehouse.training.models import build_cnn, compile_model

    model = build_cnn(image_size=IMAGE_SIZE, num_classes=NUM_CLASSES, batch_norm=False)
    return compile_model(model, optimizer=OPTIMIZER, learning_rate=LEARNING_RATE)


class EpochClock:
    """One side of the input comparison: its own model and dataset, warmed up once.

    Each ``timed_epoch`` is one more ``fit`` epoch of the same model on the same dataset (the
    streaming loader re-reads and reshuffles the snapshot at each epoch), so that a sample costs
    one epoch and the two sides can alternate at a fine grain on a noisy machine.
    """

    def __init__(self, dataset: Any, images: int) -> None:
        """Build and compile the model, then run the untimed warm-up epoch (tracing)."""
        import keras

        keras.utils.set_random_seed(LOADER_SEED)
        self._dataset = dataset
        self._images = images
        self._model = build_model()
        self._fit()  # warm-up, not timed

    def _fit(self) -> float:
        import keras

        seconds: list[float] = []

        class EpochTimer(keras.callbacks.Callback):
            """Wall-clock seconds of the epoch, the creation of its iterator included."""

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                seconds.append(time.perf_counter() - self.start)

        self._model.fit(self._dataset, epochs=1, callbacks=[EpochTimer()], shuffle=False, verbose=0)
        return seconds[-1]

    def timed_epoch(self) -> float:
        """Images per second of one more epoch."""
        return self._images / self._fit()


def train_epoch(uris: Sequence[str]) -> Iterator[tuple[Any, Any]]:
    """One shuffled pass over the train split, as every measurement reads it."""
    from keras_lakehouse.training.loader import ImageColumns, iter_batches, local_path

    return iter_batches(
        [local_path(uri) for uri in uris],
        ImageColumns(IMAGE_SIZE),
        batch_size=TRAIN_BATCH,
        split=TRAIN_SPLIT,
        shuffle_buffer=SHUFFLE_BUFFER,
        seed=LOADER_SEED,
    )


def measure_input_ratio(snapshot: Any) -> dict[str, Any]:
    """CNN images/s fed by the streaming loader vs by the same batches cached in memory."""
    import numpy as np
    import tensorflow as tf

    from keras_lakehouse.training.loader import ImageColumns, to_tf_dataset

    decode = ImageColumns(IMAGE_SIZE)
    batches = list(train_epoch(snapshot.files))
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    rows = len(labels)
    steps = len(batches)

    def cached() -> Any:
        data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(TRAIN_BATCH)
        return data.prefetch(tf.data.AUTOTUNE)

    def streaming() -> Any:
        return to_tf_dataset(
            snapshot,
            decode,
            batch_size=TRAIN_BATCH,
            split=TRAIN_SPLIT,
            shuffle_buffer=SHUFFLE_BUFFER,
            seed=LOADER_SEED,
        )

    for name, make in (("streaming", streaming), ("cached", cached)):
        cardinality = int(make().cardinality())
        if cardinality != steps:
            raise RuntimeError(f"{name} dataset has {cardinality} batches, expected {steps}.")
    log(f"input ratio: {rows} train images, {steps} steps per epoch, {INPUT_REPEATS} repeats")
    clocks = {"streaming": EpochClock(streaming(), rows), "cached": EpochClock(cached(), rows)}
    sides = alternate({name: clock.timed_epoch for name, clock in clocks.items()}, INPUT_REPEATS)
    ratio = sides["streaming"]["median"] / sides["cached"]["median"]
    return {
        "unit": "images/s",
        "train_images": rows,
        "steps_per_epoch": steps,
        "repeats": INPUT_REPEATS,
        "streaming": sides["streaming"],
        "cached": sides["cached"],
        "ratio": ratio,
        "goal": GOAL_INPUT_RATIO,
        "met": ratio >= GOAL_INPUT_RATIO,
    }


# ---- 2. Memory -------------------------------------------------------------------------------


def run_child(mode: str, snapshot_file: Path) -> dict[str, Any]:
    """One memory measurement in a fresh interpreter; its JSON report."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    command += ["--snapshot", str(snapshot_file)]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(mode: str, snapshot_file: Path) -> dict[str, Any]:
    """In a fresh process: stream, fit or materialise one train epoch; report the peak RSS."""
    import numpy as np

    from keras_lakehouse.training.loader import DeltaSnapshot

    fields = json.loads(snapshot_file.read_text())
    snapshot = DeltaSnapshot(**(fields | {"files": tuple(fields["files"])}))

    def epoch() -> Iterator[tuple[Any, Any]]:
        return train_epoch(snapshot.files)

    rows = 0
    if mode == CHILD_FIT:
        import keras

        from keras_lakehouse.training.loader import ImageColumns, to_tf_dataset

        keras.utils.set_random_seed(LOADER_SEED)
        model = build_model()
        baseline = max_rss_mib()
        dataset = to_tf_dataset(
            snapshot,
            ImageColumns(IMAGE_SIZE),
            batch_size=TRAIN_BATCH,
            split=TRAIN_SPLIT,
            shuffle_buffer=SHUFFLE_BUFFER,
            seed=LOADER_SEED,
        )
        model.fit(dataset, epochs=1, shuffle=False, verbose=0)
        rows = snapshot.split_counts[TRAIN_SPLIT]
    elif mode == CHILD_STREAM:
        baseline = max_rss_mib()
        for _, labels in epoch():
            rows += len(labels)
    else:
        baseline = max_rss_mib()
        batches = list(epoch())
        images = np.concatenate([x for x, _ in batches])
        rows = len(np.concatenate([y for _, y in batches]))
        del batches
        if images.nbytes == 0:
            raise RuntimeError("The train split is empty.")
    return {
        "mode": mode,
        "rows": rows,
        "baseline_mib": baseline,
        "peak_mib": max_rss_mib(),
        "ru_maxrss_mib": ru_maxrss_mib(),
    }


def measure_memory(snapshot_files: dict[int, Path]) -> dict[str, Any]:
    """Peak RSS of one streamed epoch at ×1 and ×8, and of the ×8 split held in memory."""
    results: dict[str, Any] = {"unit": "MiB", "repeats": MEMORY_REPEATS}
    for mode in (CHILD_STREAM, CHILD_FIT):
        reports: dict[int, list[dict[str, Any]]] = {scale: [] for scale in SCALES}

        def measure(scale: int, mode: str = mode, reports: dict = reports) -> float:
            report = run_child(mode, snapshot_files[scale])
            reports[scale].append(report)
            return report["peak_mib"]

        log(f"memory ({mode}): ×{SMALL_SCALE} vs ×{LARGE_SCALE}, {MEMORY_REPEATS} repeats")
        sides = alternate(
            {f"x{scale}": lambda scale=scale: measure(scale) for scale in SCALES}, MEMORY_REPEATS
        )
        ratio = sides[f"x{LARGE_SCALE}"]["median"] / sides[f"x{SMALL_SCALE}"]["median"]
        results[mode] = {
            "peak": sides,
            "baseline_median": {
                f"x{scale}": statistics.median(r["baseline_mib"] for r in reports[scale])
                for scale in SCALES
            },
            "rows": {f"x{scale}": reports[scale][0]["rows"] for scale in SCALES},
            "ratio": ratio,
            "goal": GOAL_MEMORY_RATIO,
            "met": ratio <= GOAL_MEMORY_RATIO,
        }
    log(f"memory ({CHILD_MATERIALISE}): ×{LARGE_SCALE} train split in memory")

    def materialise() -> float:
        return run_child(CHILD_MATERIALISE, snapshot_files[LARGE_SCALE])["peak_mib"]

    sides = alternate({"materialise": materialise}, MEMORY_REPEATS)
    results[CHILD_MATERIALISE] = {"peak": sides["materialise"]}
    return results


# ---- 3. Handoff --------------------------------------------------------------------------------


def measure_handoff(spark: Any, snapshot: Any) -> dict[str, Any]:
    """Rows/s from the silver table into numpy batches: streaming loader vs Spark toPandas."""
    import numpy as np

    from keras_lakehouse.training.loader import ImageColumns, iter_batches, local_path

    decode = ImageColumns(IMAGE_SIZE)
    files = [local_path(name) for name in snapshot.files]
    path = local_path(snapshot.location)

    def streaming() -> np.ndarray:
        counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        for _, labels in iter_batches(files, decode, batch_size=HANDOFF_BATCH):
            counts += np.bincount(labels, minlength=NUM_CLASSES)
        return counts

    def through_spark() -> np.ndarray:
        frame = (
            spark.read.format("delta")
            .option("versionAsOf", snapshot.version)
            .load(path)
            .select("image", "label_index")
            .toPandas()
        )
        pixels = np.frombuffer(b"".join(frame["image"]), dtype=np.uint8)
        pixels = pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 3)
        labels = frame["label_index"].to_numpy().astype(np.int32)
        batches = [
            (pixels[start : start + HANDOFF_BATCH], labels[start : start + HANDOFF_BATCH])
            for start in range(0, len(labels), HANDOFF_BATCH)
        ]
        counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        for _, batch_labels in batches:
            counts += np.bincount(batch_labels, minlength=NUM_CLASSES)
        return counts

    def rate(read: Callable[[], np.ndarray]) -> float:
        started = time.perf_counter()
        counts = read()
        seconds = time.perf_counter() - started
        if int(counts.sum()) != snapshot.num_rows:
            raise RuntimeError(f"Read {counts.sum()} rows, the snapshot has {snapshot.num_rows}.")
        return snapshot.num_rows / seconds

    log("handoff: one untimed warm-up of each side")
    same = np.array_equal(streaming(), through_spark())
    if not same:
        raise RuntimeError("The two handoffs read different label counts.")
    log(f"handoff: {snapshot.num_rows} rows, {HANDOFF_REPEATS} repeats")
    sides = alternate(
        {"streaming": lambda: rate(streaming), "spark": lambda: rate(through_spark)},
        HANDOFF_REPEATS,
    )
    return {
        "unit": "rows/s",
        "rows": snapshot.num_rows,
        "repeats": HANDOFF_REPEATS,
        "streaming": sides["streaming"],
        "spark": sides["spark"],
        "ratio": sides["streaming"]["median"] / sides["spark"]["median"],
    }


# ---- Report ----------------------------------------------------------------------------------


def cell(summary: Summary, digits: int = 0) -> str:
    """``median (min–max)``."""
    spec = f",.{digits}f"
    low, high = format(summary["min"], spec), format(summary["max"], spec)
    return f"{format(summary['median'], spec)} ({low}–{high})"


def verdict(met: bool) -> str:
    """A goal's outcome as a word."""
    return "met" if met else "**missed**"


def render(results: dict[str, Any]) -> str:
    """The markdown report of one run."""
    inputs, memory, handoff = results["input_ratio"], results["memory"], results["handoff"]
    stream, fit = memory[CHILD_STREAM], memory[CHILD_FIT]
    small, large = f"x{SMALL_SCALE}", f"x{LARGE_SCALE}"
    rows = [
        "| Measurement | A | B | A/B (medians) | Goal |",
        "|---|---|---|---|---|",
        f"| 1. Input: CNN training images/s, ×{SMALL_SCALE}, {inputs['train_images']} images"
        f" ({inputs['repeats']} repeats) | streaming {cell(inputs['streaming'])}"
        f" | cached in memory {cell(inputs['cached'])} | {inputs['ratio']:.2f}"
        f" | ≥ {GOAL_INPUT_RATIO} {verdict(inputs['met'])} |",
        f"| 2a. Memory: peak RSS MiB, loader epoch (no TF) ({memory['repeats']} repeats)"
        f" | ×{LARGE_SCALE} {cell(stream['peak'][large], 1)}"
        f" | ×{SMALL_SCALE} {cell(stream['peak'][small], 1)} | {stream['ratio']:.2f}"
        f" | ≤ {GOAL_MEMORY_RATIO} {verdict(stream['met'])} |",
        f"| 2b. Memory: peak RSS MiB, CNN training epoch ({memory['repeats']} repeats)"
        f" | ×{LARGE_SCALE} {cell(fit['peak'][large], 1)}"
        f" | ×{SMALL_SCALE} {cell(fit['peak'][small], 1)} | {fit['ratio']:.2f}"
        f" | ≤ {GOAL_MEMORY_RATIO} {verdict(fit['met'])} |",
        f"| 2c. Contrast: peak RSS MiB, whole ×{LARGE_SCALE} train split in memory"
        f" | {cell(memory[CHILD_MATERIALISE]['peak'], 1)}"
        f" | loader epoch ×{LARGE_SCALE} {cell(stream['peak'][large], 1)}"
        f" | {memory[CHILD_MATERIALISE]['peak']['median'] / stream['peak'][large]['median']:.2f}"
        " | — |",
        f"| 3. Handoff: rows/s silver → numpy, ×{LARGE_SCALE}, {handoff['rows']} rows"
        f" ({handoff['repeats']} repeats) | streaming {cell(handoff['streaming'])}"
        f" | Spark toPandas {cell(handoff['spark'])} | {handoff['ratio']:.2f} | — |",
    ]
    data = results["data"]
    counts = "; ".join(
        f"×{scale}: {item['rows']} images {item['split_counts']}, Delta v{item['version']}, "
        f"{item['files']} files, {'reused' if item['reused'] else 'built'}"
        + ("" if item["reused"] else f" in {item['setup_seconds']:.0f} s")
        for scale, item in ((int(key), value) for key, value in data.items())
    )
    host = results["machine"]
    lines = [
        f"## Loader benchmark — {results['timestamp']}",
        "",
        *rows,
        "",
        "Median (min–max) over alternating repeats (A B A B ...). "
        f"Baseline RSS after imports (2a, ×{SMALL_SCALE}/×{LARGE_SCALE}): "
        f"{stream['baseline_median'][small]:.1f}/{stream['baseline_median'][large]:.1f} MiB; "
        f"(2b, model built): {fit['baseline_median'][small]:.1f}/"
        f"{fit['baseline_median'][large]:.1f} MiB.",
        "",
        f"- Data: {counts}",
        f"- Machine: {host['nproc']} CPUs ({host['cpu']}), {host['memory_gib']} GiB, "
        f"{host['platform']}, Python {host['python']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- Total runtime: {results['total_seconds']:.0f} s",
        "",
    ]
    return "\n".join(lines)


def write_results(results: dict[str, Any], report: str) -> Path:
    """``<timestamp>.json/.md`` and ``latest.json/.md`` under benchmarks/results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = results["timestamp"].replace(":", "").replace("-", "")
    payload = json.dumps(results, indent=2, default=str)
    for name in (stamp, "latest"):
        (RESULTS_DIR / f"{name}.json").write_text(payload)
        (RESULTS_DIR / f"{name}.md").write_text(report)
    return RESULTS_DIR / f"{stamp}.md"


# ---- Main ------------------------------------------------------------------------------------


def main() -> int:
    """Set up the data, measure, report."""
    started = time.perf_counter()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{WORK_DIR / 'mlflow.db'}"
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(),
    }
    spark = start_spark()
    setups = {scale: prepare(scale) for scale in SCALES}

    from keras_lakehouse.datasets import DeltaSnapshotDataset

    snapshots = {}
    snapshot_files: dict[int, Path] = {}
    for scale, setup in setups.items():
        table = Path(setup["project"]) / SILVER_TABLE
        snapshot = DeltaSnapshotDataset(filepath=str(table)).load()
        snapshots[scale] = snapshot
        snapshot_files[scale] = WORK_DIR / f"snapshot_scale{scale}.json"
        snapshot_files[scale].write_text(json.dumps(asdict(snapshot)))
    results["data"] = {
        str(scale): {
            "rows": snapshot.num_rows,
            "split_counts": snapshot.split_counts,
            "version": snapshot.version,
            "files": len(snapshot.files),
            "reused": setups[scale]["reused"],
            "setup_seconds": setups[scale]["seconds"],
        }
        for scale, snapshot in snapshots.items()
    }
    results["handoff"] = measure_handoff(spark, snapshots[LARGE_SCALE])
    spark.stop()  # the rest needs no JVM: fewer threads competing for the CPUs
    results["memory"] = measure_memory(snapshot_files)
    results["input_ratio"] = measure_input_ratio(snapshots[SMALL_SCALE])
    results["total_seconds"] = time.perf_counter() - started
    report = render(results)
    path = write_results(results, report)
    log(f"wrote {path} and latest.json/latest.md")
    print()
    print(report)
    return 0


BENCHES = ("all", "loader", "scale")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: which benchmark (``--bench``, ``--quick``); ``--child`` is internal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bench",
        choices=BENCHES,
        default="all",
        help="loader: this file's benchmark; scale: scale_bench.py (ingestion at ×1, ×8, ×32); "
        "all (default): both, each in its own process",
    )
    parser.add_argument("--quick", action="store_true", help="scale benchmark: skip ×32")
    parser.add_argument(
        "--repeats", type=int, default=1, help="scale benchmark: repeats at ×1 and ×8 (default 1)"
    )
    parser.add_argument("--child", choices=CHILD_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_all(quick: bool, repeats: int) -> int:
    """The loader benchmark, then the scale benchmark, each in a fresh process."""
    status = 0
    for name in BENCHES[1:]:
        command = [sys.executable, str(Path(__file__).resolve()), "--bench", name]
        command += ["--repeats", str(repeats)] + (["--quick"] if quick else [])
        status = subprocess.run(command, check=False).returncode or status
    return status


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        print(json.dumps(child(arguments.child, arguments.snapshot)))
        raise SystemExit(0)
    if arguments.bench == "scale":
        import scale_bench

        raise SystemExit(scale_bench.main(quick=arguments.quick, repeats=arguments.repeats))
    if arguments.bench == "loader":
        raise SystemExit(main())
    raise SystemExit(run_all(arguments.quick, arguments.repeats))

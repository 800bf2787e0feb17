"""One fresh process of the scale benchmark, timed from its start, its memory sampled.

The driver is the Python process and its JVM (``spark-submit`` runs ``exec java … SparkSubmit``,
so the JVM is a direct child of the Python process); Spark's Python workers (``pyspark.daemon``
and its forks, children of the JVM) are the executors' side and are counted apart. Every
``SAMPLE_SECONDS`` the process tree is read from ``/proc``: the driver's peak is the largest sum
of the Python and JVM ``VmRSS`` seen in one sample. Each process's kernel high-water mark
(``VmHWM``) is kept too: their sum bounds the driver's peak from above (the two peaks need not
coincide). ``getrusage(RUSAGE_CHILDREN)`` cannot give this: its ``ru_maxrss`` is the largest
peak of any one waited-for descendant (a maximum, not the sum of Python and JVM), over every
child this benchmark ever ran, and misses processes that were never waited for.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CHILD = Path(__file__).resolve().parent / "scale_child.py"
LOGGING = Path(__file__).resolve().parents[1] / "conf" / "logging.yml"
SAMPLE_SECONDS = 0.25
KIB_PER_MIB = 1024
JVM_MARKER = "org.apache.spark.deploy.SparkSubmit"
LAUNCHER_MARKER = "org.apache.spark.launcher.Main"  # spark-class's short-lived command builder
CHILD_TIMEOUT_S = 1800


def _parents() -> dict[int, int]:
    """pid → parent pid of every process visible in /proc."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    return parents


def _descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of ``root`` and every process below it."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append((pid, parents.get(pid, 0)))
        queue.extend(children.get(pid, ()))
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """``VmRSS`` and ``VmHWM`` of one process, in KiB (0, 0 once it is gone)."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _role(pid: int, parent: int, root: int) -> str:
    """python (the root), jvm (its child once ``spark-class`` has exec'd java) or workers.

    Read at every sample, never cached: the same pid is bash before its exec, and a Python
    worker briefly carries the JVM's command line between the JVM's fork and its exec.
    """
    if pid == root:
        return "python"
    if parent != root:
        return "workers"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return "workers"
    is_java = Path(argv[0]).name == "java"
    return "jvm" if is_java and JVM_MARKER in argv and LAUNCHER_MARKER not in argv else "workers"


class MemorySampler(threading.Thread):
    """Samples the tree of one process until ``stop`` is set; peaks in KiB."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.driver_peak = self.tree_peak = self.samples = 0
        self.high_water: dict[str, int] = {"python": 0, "jvm": 0}

    def run(self) -> None:
        """Sample, then sleep, until stopped."""
        while not self.stop.is_set():
            sums = {"python": 0, "jvm": 0, "workers": 0}
            for pid, parent in _descendants(self.root):
                rss, hwm = _memory_kib(pid)
                role = _role(pid, parent, self.root)
                sums[role] += rss
                if role in self.high_water:
                    self.high_water[role] = max(self.high_water[role], hwm)
            self.driver_peak = max(self.driver_peak, sums["python"] + sums["jvm"])
            self.tree_peak = max(self.tree_peak, sum(sums.values()))
            self.samples += 1
            self.stop.wait(SAMPLE_SECONDS)


def measure(arguments: list[str], project: Path, name: Path) -> dict[str, Any]:
    """Run ``scale_child.py ARGUMENTS`` in a fresh process in ``project``: seconds from its
    start, memory. The last argument is the child's report; its output goes to ``NAME.log``.

    The child runs in the project copy with the project's ``conf/logging.yml``, so its log file
    is the copy's ``data/08_reporting/kedro_run.log`` (Kedro reads the logging configuration
    from the working directory when it is imported).
    """
    report_file, log_file = Path(arguments[-1]), name.with_suffix(".log")
    report_file.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    launched = time.time()
    with log_file.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(CHILD), *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=project,
            env=os.environ | {"PYTHONUNBUFFERED": "1", "KEDRO_LOGGING_CONFIG": str(LOGGING)},
        )
        sampler = MemorySampler(process.pid)
        sampler.start()
        try:
            code = process.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            sampler.stop.set()
            sampler.join()
            if process.poll() is None:
                process.kill()
    exited = time.time()
    if code != 0 or not report_file.is_file():
        tail = log_file.read_text()[-4000:]
        raise RuntimeError(f"scale_child.py {' '.join(arguments)} failed ({code}):\n{tail}")
    report = json.loads(report_file.read_text())
    return report | {
        "seconds": report["finished_at"] - launched,
        "startup_seconds": report["spark_ready_at"] - launched,
        "process_seconds": exited - launched,
        "driver_peak_mib": sampler.driver_peak / KIB_PER_MIB,
        "tree_peak_mib": sampler.tree_peak / KIB_PER_MIB,
        "high_water_mib": {k: v / KIB_PER_MIB for k, v in sampler.high_water.items()},
        "rss_samples": sampler.samples,
        "rusage_children_max_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        / KIB_PER_MIB,
        "load_average": [load_before, os.getloadavg()[0]],
    }

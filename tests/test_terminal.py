"""What a run prints: no TensorFlow C++ lines, no Kedro/OmegaConf deprecation warnings, no Spark
start-up notes or Ivy report, a summary at the end; the full log in a file under data/.

One ``python -m keras_lakehouse`` in a project copy, as a user starts a run, on a small sample:
the text ingestion nodes (Spark starts, the summary shows ingestion only). Keras loads when a
training node runs, so the same process then imports TensorFlow and starts its devices, as that
node does: that is what logs ``failed call to cuInit`` on a machine without a GPU.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NODES = "text.check_raw_texts,text.upsert_texts_bronze"
# `python -m keras_lakehouse --nodes=...`, then what a training node does first.
RUN = f"""
import sys
from keras_lakehouse.__main__ import main
sys.argv = ["keras_lakehouse", "--nodes={NODES}"]
try:
    main()
except SystemExit as done:
    code = done.code
import tensorflow as tf
tf.config.list_physical_devices("GPU")
sys.exit(code)
"""
NOISE = {
    "a TensorFlow C++ log line": re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "),
    "an absl log line": re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] "),
    "a CUDA error": re.compile(r"cuInit|CUDA error|absl::InitializeLog"),
    "a CPU feature note": re.compile(r"cpu_feature_guard|rebuild TensorFlow"),
    "a deprecation warning": re.compile(r"DeprecationWarning|FutureWarning|register_new_resolver"),
    "an Ivy report": re.compile(r":: resolving dependencies ::|Ivy Default Cache|ivy-default"),
    "a Spark start-up note": re.compile(
        r"Using Spark's default log4j profile|Setting default log level|NativeCodeLoader"
    ),
    "a dataset load or save": re.compile(r"Loading data from|Saving data to"),
}


@pytest.mark.slow
def test_a_run_prints_a_report_and_logs_everything_to_a_file(project_copy) -> None:
    from keras_lakehouse.sample_data import generate

    project = project_copy()
    shutil.copy(PROJECT_ROOT / "conf" / "logging.yml", project / "conf" / "logging.yml")
    (project / "data" / "08_reporting").mkdir(parents=True)  # a clone has it (.gitkeep)
    generate(project / "data" / "01_raw", scale=1, seed=42, images_per_label=20, texts_per_label=40)
    environment = {
        name: value
        for name, value in os.environ.items()
        # the suite's own settings of what this test checks
        if name not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_CONFIGURE_LOGGING", "KEDRO_LOGGING_CONFIG")
    }

    result = subprocess.run(
        [sys.executable, "-c", RUN],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout
    assert result.returncode == 0, output[-6000:]
    lines = output.splitlines()
    found = {
        what: [line for line in lines if pattern.search(line)] for what, pattern in NOISE.items()
    }
    assert {what: hits for what, hits in found.items() if hits} == {}, output

    counts = json.loads((project / "data/08_reporting/texts_ingestion_counts.json").read_text())
    start = lines.index(next(line for line in lines if line.endswith(" INFO    Run summary")))
    summary = lines[start + 1 :]
    assert summary == [
        f"  Ingestion     texts: {counts['raw']} new -> {counts['bronze']} bronze, "
        f"{counts['quarantine']} quarantined "
        f"({', '.join(f'{k} {n}' for k, n in counts['quarantine_by_reason'].items())})",
        "  Reports       data/08_reporting/",
        "  Full log      data/08_reporting/kedro_run.log",
    ]
    assert len(lines) < 30, output  # Kedro's node progress, the project's lines, the summary

    log = (project / "data/08_reporting/kedro_run.log").read_text()
    assert "keras_lakehouse.run_summary: Run summary" in log
    assert "kedro.io.data_catalog: Loading data from raw_texts" in log  # hidden on the terminal
    assert "kedro.runner.sequential_runner: Completed node: text.check_raw_texts" in log
    assert "Hidden while TensorFlow loaded (known harmless)" in log  # the absl lines, at DEBUG


def test_tensorflow_load_noise_is_logged_and_every_other_line_kept(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from keras_lakehouse import TENSORFLOW_LOAD_NOISE, _stderr_filtered

    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "E0000 00:00:1796.1 16948 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting "
        "to register factory for plugin cuDNN when one has already been registered\n"
    )
    with (
        caplog.at_level(logging.DEBUG, logger="keras_lakehouse"),
        _stderr_filtered(TENSORFLOW_LOAD_NOISE),
    ):
        os.write(2, noise.encode())
        os.write(2, b"E0000 00:00:1796.2 16948 something.cc:1] a real error\n")

    assert capfd.readouterr().err == "E0000 00:00:1796.2 16948 something.cc:1] a real error\n"
    (record,) = [r for r in caplog.records if r.name == "keras_lakehouse"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage().endswith(noise.rstrip())


@pytest.mark.parametrize(
    ("visible", "driver", "expected"),
    [(None, True, True), (None, False, False), ("", True, False), ("-1", True, False)],
)
def test_a_gpu_is_usable_where_a_driver_is_loaded_and_cuda_devices_are_not_hidden(
    monkeypatch, visible, driver, expected
) -> None:
    import keras_lakehouse

    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setattr(keras_lakehouse.os.path, "exists", lambda path: driver)

    assert keras_lakehouse.nvidia_driver_present() is expected

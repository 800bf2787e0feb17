"""Keras Lakehouse: Kedro pipelines for deep learning on a Spark + Delta lakehouse.

Importing the package quiets TensorFlow's native (C++) log lines before TensorFlow is imported.
This module is the first of the project that every process runs: ``kedro run`` imports
``settings.py``, a Spark Python worker the module of the function it runs, a notebook what it
uses; the Spark JVM and its Python workers inherit the environment of the driver. Two measures,
both of which step aside for ``TF_CPP_MIN_LOG_LEVEL=0`` (or ``1``) when every line is wanted:

* ``TF_CPP_MIN_LOG_LEVEL`` defaults to ``3`` (fatal only) on a machine without an NVIDIA driver:
  there, every error TensorFlow's C++ side logs is about the GPU that is not there (``failed call
  to cuInit: CUDA error``, on every CPU machine) or a CPU tuning note. Where a driver is loaded it
  defaults to ``2``: an error is then about the GPU the run should use (a ``cuInit`` failure,
  a missing library) and stays on the terminal; ``training.job`` also warns when the
  driver is there and TensorFlow sees no GPU.
* Loading TensorFlow's libraries writes lines that no log level hides (absl logging before
  ``absl::InitializeLog``, tensorflow/tensorflow#62075 and #100442): CUDA plugins registered twice,
  harmless everywhere. While ``tensorflow`` is imported, standard error (the file descriptor) goes
  to a temporary file; afterwards every other line is written back and those are logged at DEBUG.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Present where an NVIDIA driver is loaded (Linux, and containers given a GPU) or where WSL 2
# shares the host's GPU.
NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg")
# The lines loading TensorFlow writes at every level (see the module docstring).
TENSORFLOW_LOAD_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin"
    r"|computation placer already registered"
)


def nvidia_driver_present() -> bool:
    """Whether TensorFlow could get a GPU here: an NVIDIA driver is loaded and
    ``CUDA_VISIBLE_DEVICES`` does not hide every device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES)


def tensorflow_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it (0, all messages, when unset or invalid)."""
    try:
        return int(os.environ.get(TF_LOG_LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, for a loader that filters what its libraries write."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the finders after it locate TensorFlow
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with standard error filtered (``TENSORFLOW_LOAD_NOISE``)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # TensorFlow sees its own loader, as it would without this one.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _stderr_filtered(TENSORFLOW_LOAD_NOISE):
            self._loader.exec_module(module)


@contextlib.contextmanager
def _stderr_filtered(noise: re.Pattern[str]) -> Iterator[None]:
    """File descriptor 2 goes to a temporary file for the block; then its lines that match
    ``noise`` are logged at DEBUG and the others written back, errors included."""
    with contextlib.ExitStack() as stack:
        try:
            captured = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no standard error, or nowhere to capture it: nothing is filtered
            yield
            return
        _flush_stderr()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept, hidden = [], []
            for line in captured.read().splitlines(keepends=True):
                (hidden if noise.search(line.decode(errors="replace")) else kept).append(line)
            if kept:
                with open(2, "wb", closefd=False) as stderr:
                    stderr.write(b"".join(kept))
            if hidden:
                logging.getLogger(__name__).debug(
                    "Hidden while TensorFlow loaded (known harmless):\n%s",
                    b"".join(hidden).decode(errors="replace").rstrip(),
                )


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()


os.environ.setdefault(TF_LOG_LEVEL_VARIABLE, "2" if nvidia_driver_present() else "3")
if (
    tensorflow_log_level() >= 2
    and "tensorflow" not in sys.modules
    and not any(type(finder).__name__ == "_QuietTensorFlowImport" for finder in sys.meta_path)
):
    sys.meta_path.insert(0, _QuietTensorFlowImport())

"""``use_mixed_precision_on_gpu``: where TensorFlow is first imported in a run, it also says when
an NVIDIA driver is loaded but TensorFlow sees no GPU (models would silently train on the CPU)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import tensorflow as tf

from keras_lakehouse.training import job

LOGGER = "keras_lakehouse.training.job"


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """TensorFlow lists no GPU (whatever this machine has), and the warning is not yet given."""
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda device_type=None: [])
    job._warn_gpu_unused.cache_clear()
    caplog.set_level(logging.WARNING, logger=LOGGER)
    yield
    job._warn_gpu_unused.cache_clear()


def gpu_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "sees no GPU" in r.msg]


def test_a_driver_without_a_gpu_for_tensorflow_warns_once(
    no_gpu: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(job, "nvidia_driver_present", lambda: True)
    assert job.use_mixed_precision_on_gpu() is False
    assert job.use_mixed_precision_on_gpu() is False  # the second model of the run
    assert len(gpu_warnings(caplog)) == 1


def test_no_driver_no_warning(
    no_gpu: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(job, "nvidia_driver_present", lambda: False)
    assert job.use_mixed_precision_on_gpu() is False
    assert gpu_warnings(caplog) == []

"""``--params ingestion.full_refresh=true``: the run starts over on what it builds from raw files,
and only on that (checked on the real pipelines and catalog, without running them)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog

from keras_lakehouse import settings
from keras_lakehouse.datasets import DeltaTableDataset, FileStreamDataset
from keras_lakehouse.datasets.optional import OptionalDataset
from keras_lakehouse.hooks import FullRefreshHooks

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def started(full_refresh: bool, pipeline_name: str, monkeypatch) -> tuple[DataCatalog, list]:
    """The catalog after the hook ran before ``pipeline_name``, and the logs started over."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        runtime_params={"ingestion": {"full_refresh": full_refresh}},
        **settings.CONFIG_LOADER_ARGS,
    )
    catalog = DataCatalog.from_config(loader["catalog"])
    reset: list[str] = []
    monkeypatch.setattr(
        FileStreamDataset, "start_over", lambda self: reset.append(self._checkpoint)
    )
    hooks = FullRefreshHooks()
    hooks.after_context_created(SimpleNamespace(config_loader=loader))
    bootstrap_project(PROJECT_ROOT)
    pipeline = pipelines[pipeline_name]
    hooks.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    return catalog, reset


def test_a_full_refresh_rebuilds_what_is_built_from_raw_files(monkeypatch) -> None:
    catalog, reset = started(True, "__default__", monkeypatch)

    assert sorted(Path(path).name for path in reset) == ["raw_images", "raw_texts"]
    for name in ("images_bronze", "images_quarantine", "texts_bronze", "images_silver@spark"):
        assert catalog.get(name)._write_mode == "overwrite", name
    for name in ("images_bronze_known", "texts_bronze_known"):
        assert catalog.get(name)._forgotten, name  # reads as before a first run
    for name in ("images_silver_known", "texts_silver_known", "vocabulary_saved"):
        dataset = catalog.get(name)
        assert isinstance(dataset, OptionalDataset)
        assert dataset.load() is None, name


def test_a_normal_run_and_other_pipelines_are_left_alone(monkeypatch) -> None:
    catalog, reset = started(False, "__default__", monkeypatch)
    assert reset == []
    assert catalog.get("images_bronze")._write_mode == "merge"

    catalog, reset = started(True, "inference", monkeypatch)
    assert reset == []
    predictions = catalog.get("predictions")
    assert isinstance(predictions, DeltaTableDataset)
    assert predictions._write_mode == "merge"


@pytest.mark.parametrize("value", ["yes please", 3])
def test_full_refresh_must_be_a_boolean(value) -> None:
    from keras_lakehouse.params_validation import validate_parameters

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        runtime_params={"ingestion": {"full_refresh": value}},
        **settings.CONFIG_LOADER_ARGS,
    )
    with pytest.raises(ValueError, match=r"ingestion\.full_refresh"):
        validate_parameters(loader["parameters"])

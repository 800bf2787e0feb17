"""The evaluation figures are drawn and saved as non-empty PNGs by the catalog's dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kedro_datasets.matplotlib import MatplotlibDataset
from PIL import Image

from keras_lakehouse.evaluation.plots import (
    confusion_matrix_figure,
    image_grid_figure,
    training_curves_figure,
)


def test_figures_are_saved_as_pngs_in_one_folder(tmp_path: Path) -> None:
    figures = {
        "confusion_matrix.png": confusion_matrix_figure([[5, 1], [0, 4]], ["cat", "dog"], "t"),
        "training_curves.png": training_curves_figure(
            {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}, "t"
        ),
        "test_images.png": image_grid_figure(
            np.zeros((5, 8, 8, 3), dtype=np.uint8), list("aabbc"), list("abbbc"), "t"
        ),
    }
    MatplotlibDataset(filepath=str(tmp_path / "plots"), save_args={"format": "png"}).save(figures)
    for name in figures:
        path = tmp_path / "plots" / name
        assert path.stat().st_size > 1000
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert min(image.size) > 100


def test_grid_marks_wrong_predictions_in_red() -> None:
    figure = image_grid_figure(np.zeros((2, 4, 4, 3), dtype=np.uint8), ["a", "b"], ["a", "c"], "t")
    titles = {axes.get_title(): axes.title.get_color() for axes in figure.axes if axes.get_title()}
    assert titles == {"a → a": "black", "b → c": "red"}

"""Figures people look at: confusion matrix, training curves, a grid of test images.

Built on ``matplotlib.figure.Figure`` directly (no pyplot state, no display needed); the catalog
saves them with kedro-datasets' ``MatplotlibDataset`` and the evaluation logs them to MLflow.
matplotlib is imported when a figure is drawn, not with this module (every Kedro command imports
the evaluation nodes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GRID_COLUMNS = 4


def confusion_matrix_figure(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str
) -> Figure:
    """Counts per (true, predicted) cell, darker for more."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix)
    size = max(4.0, 1.1 * len(labels) + 2)
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > threshold else "black"
        axes.text(column, row, str(value), ha="center", va="center", color=colour)
    return figure


def training_curves_figure(history: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Train against validation loss and accuracy, one point per epoch."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    for position, metric in enumerate(("loss", "accuracy"), start=1):
        axes = figure.add_subplot(1, 2, position)
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = list(history.get(key, []))
            if values:
                axes.plot(range(1, len(values) + 1), values, style, label=key, markersize=3)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    return figure


def image_grid_figure(
    images: np.ndarray, true_labels: Sequence[str], predicted: Sequence[str], title: str
) -> Figure:
    """Test images with ``true → predicted`` under each; wrong predictions in red."""
    from matplotlib.figure import Figure

    count = len(images)
    columns = min(GRID_COLUMNS, max(count, 1))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(2.4 * columns, 2.6 * rows), layout="constrained")
    for index in range(rows * columns):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.axis("off")
        if index >= count:
            continue
        axes.imshow(images[index])
        right = true_labels[index] == predicted[index]
        axes.set_title(
            f"{true_labels[index]} → {predicted[index]}",
            color="black" if right else "red",
            fontsize=9,
        )
    figure.suptitle(title)
    return figure

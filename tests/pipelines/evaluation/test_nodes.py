"""Evaluation node helpers on literal data."""

from __future__ import annotations

import numpy as np

from keras_lakehouse.pipelines.evaluation.nodes import confidently_wrong

LABELS = ["cooking", "sports", "technology"]


def test_confidently_wrong_lists_the_worst_mistakes_first() -> None:
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.2, 0.7, 0.1],  # wrong (true cooking), 0.7
            [0.05, 0.05, 0.9],  # wrong (true sports), 0.9
            [0.4, 0.3, 0.3],  # wrong (true technology), 0.4
        ]
    )
    table = confidently_wrong(
        ["a", "b", "c", "d"],
        ["soup", "goal | keeper", "chip", "x"],
        np.array([0, 0, 1, 2]),
        probabilities,
        LABELS,
        limit=2,
    )
    lines = table.splitlines()
    assert lines[0] == "# Most confidently wrong test texts (3 wrong of 4)"
    assert lines[4] == "| c | sports | technology | 0.900 | chip |"
    assert lines[5] == "| b | cooking | sports | 0.700 | goal \\| keeper |"
    assert len(lines) == 6


def test_no_mistakes_says_so() -> None:
    table = confidently_wrong(
        ["a"], ["t"], np.array([1]), np.array([[0.1, 0.9]]), ["x", "y"], limit=5
    )
    assert table.splitlines()[-1] == "| — | — | — | — | no wrong predictions |"

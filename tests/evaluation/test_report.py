"""The evaluation report, the test-split alignment check and the confidently-wrong table."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from keras_lakehouse.evaluation.predictions import check_alignment
from keras_lakehouse.evaluation.report import confidently_wrong, evaluation_report
from keras_lakehouse.training.loader import DeltaSnapshot

LABELS = ["cooking", "sports", "technology"]
SNAPSHOT = DeltaSnapshot(location="/lake/texts_silver", version=7, files=(), num_rows=4)


def test_the_report_names_the_model_and_the_test_rows_it_covers() -> None:
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    report = evaluation_report(
        "lstm", np.array([0, 1, 2, 1]), probabilities, LABELS, ["d", "a", "c", "b"], SNAPSHOT
    )
    assert report["model"] == "lstm"
    assert report["accuracy"] == pytest.approx(0.75)
    assert report["test_split"] == {
        "table": "/lake/texts_silver",
        "delta_version": 7,
        "rows": 4,
        "keys_sha256": hashlib.sha256(b"a\nb\nc\nd").hexdigest(),  # order-free
    }


def test_two_reads_in_different_orders_fail_before_mislabelling() -> None:
    check_alignment(np.array([0, 1, 2]), np.array([0, 1, 2]), SNAPSHOT)
    with pytest.raises(RuntimeError, match=r"texts_silver v7 was read in two different orders"):
        check_alignment(np.array([0, 2, 1]), np.array([0, 1, 2]), SNAPSHOT)
    with pytest.raises(RuntimeError, match=r"\(2 and 3 rows\)"):
        check_alignment(np.array([0, 1]), np.array([0, 1, 2]), SNAPSHOT)


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

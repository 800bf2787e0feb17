"""Metrics from a confusion matrix small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from keras_lakehouse.evaluation.metrics import (
    classification_report,
    confusion_matrix,
    flat_metrics,
    metrics_from_confusion,
)

LABELS = ["a", "b", "c"]


def test_confusion_matrix_counts_true_rows_and_predicted_columns() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_metrics_of_a_known_matrix() -> None:
    # true a: 3 right, 1 as b | true b: 2 right | true c: 1 right, 1 as a, class c never as b
    report = metrics_from_confusion(np.array([[3, 1, 0], [0, 2, 0], [1, 0, 1]]), LABELS)
    assert report["accuracy"] == pytest.approx(6 / 8)
    a, b, c = (report["per_class"][label] for label in LABELS)
    assert (a["precision"], a["recall"]) == (pytest.approx(3 / 4), pytest.approx(3 / 4))
    assert (b["precision"], b["recall"]) == (pytest.approx(2 / 3), pytest.approx(1.0))
    assert (c["precision"], c["recall"]) == (pytest.approx(1.0), pytest.approx(1 / 2))
    f1 = [0.75, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert [a["f1"], b["f1"], c["f1"]] == pytest.approx(f1)
    assert report["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert [a["support"], b["support"], c["support"]] == [4, 2, 2]


def test_a_class_never_predicted_counts_as_zero_in_the_macro_average() -> None:
    report = metrics_from_confusion(np.array([[2, 0], [2, 0]]), ["x", "y"])
    assert report["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert report["macro_f1"] == pytest.approx((2 * 0.5 * 1 / 1.5) / 2)


def test_report_from_probabilities_has_the_cross_entropy_loss() -> None:
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.5, 0.25, 0.25]])
    report = classification_report(np.array([0, 1, 2]), probabilities, LABELS)
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert report["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.5, 0.25])))
    flat = flat_metrics(report)
    assert flat["test_macro_f1"] == report["macro_f1"]
    assert flat["test_recall_c"] == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3), r"\[0, 3\)"),
        (lambda: metrics_from_confusion(np.zeros((3, 3)), LABELS), "empty"),
        (lambda: metrics_from_confusion(np.ones((2, 2)), LABELS), "3x3"),
        (
            lambda: classification_report(np.array([0]), np.array([[1.0, 0.0]]), LABELS),
            r"\(1, 3\)",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()

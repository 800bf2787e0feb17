"""Bins and the Jensen–Shannon distance, on histograms small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from keras_lakehouse.monitoring.histograms import (
    NUMERIC,
    Histogram,
    bin_names,
    coarsen,
    deciles_to_edges,
    js_distance,
)


def test_the_same_distribution_is_at_distance_zero_whatever_the_row_counts() -> None:
    assert js_distance({"a": 10, "b": 30}, {"a": 1, "b": 3}) == pytest.approx(0.0, abs=1e-12)


def test_disjoint_distributions_are_at_distance_one() -> None:
    assert js_distance({"a": 5}, {"b": 7}) == pytest.approx(1.0)


def test_the_distance_is_symmetric_and_defined_with_empty_bins() -> None:
    p, q = {"a": 8, "b": 2, "c": 0}, {"a": 10}
    assert js_distance(p, q) == pytest.approx(js_distance(q, p))
    # By hand: m = (0.9, 0.1); JSD = 0.5 (0.8 log2 0.8/0.9 + 0.2 log2 2) + 0.5 log2 1/0.9
    divergence = 0.5 * (0.8 * math.log2(0.8 / 0.9) + 0.2) + 0.5 * math.log2(1 / 0.9)
    assert js_distance(p, q) == pytest.approx(math.sqrt(divergence))


def test_a_side_without_counts_is_an_error_not_a_distance() -> None:
    with pytest.raises(ValueError, match="counts on the current side"):
        js_distance({"a": 1}, {"a": 0})


def test_a_constant_feature_gets_bins_below_at_and_above_its_value() -> None:
    edges = deciles_to_edges([64.0] * 9)
    assert bin_names(edges) == ["(-inf, 64)", "= 64", "(64, inf)"]


def test_values_above_every_training_decile_have_a_bin_of_their_own() -> None:
    edges = deciles_to_edges([0.1, 0.2, 0.2, None, 0.5])
    names = bin_names(edges)
    assert names == ["(-inf, 0.1)", "[0.1, 0.2)", "[0.2, 0.5)", "= 0.5", "(0.5, inf)"]
    assert len(set(names)) == len(names)


def test_edges_that_differ_past_ten_digits_are_one_edge_so_names_stay_unique() -> None:
    edges = deciles_to_edges([0.123456789012, 0.123456789013, 0.5])
    assert len(edges) == 3  # 0.1234567890, 0.5 and the edge just above 0.5
    assert len(set(bin_names(edges))) == len(edges) + 1


def numeric(counts: list[int], edges: tuple[float, ...]) -> Histogram:
    return Histogram(
        kind=NUMERIC, counts=dict(zip(bin_names(edges), counts, strict=False)), edges=edges
    )


def test_small_samples_are_compared_over_merged_adjacent_bins() -> None:
    edges = tuple(float(value) for value in range(1, 10))  # ten bins
    reference = numeric([10] * 10, edges)
    current = numeric([3, 3, 3, 3, 0, 0, 3, 3, 3, 3], edges)  # 24 rows
    before, now = coarsen(reference, current, min_rows_per_bin=8)
    assert len(before) == len(now) == 3  # 24 // 8 groups of adjacent bins
    assert sum(before.values()) == 100
    assert sum(now.values()) == 24
    before, now = coarsen(reference, current, min_rows_per_bin=1)
    assert len(now) == 10  # enough rows: every bin


def test_the_distance_agrees_with_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    cases = [({"a": 3, "b": 1, "c": 6}, {"a": 1, "b": 5}), ({"x": 1}, {"x": 2, "y": 9})]
    for p, q in cases:
        bins = sorted(set(p) | set(q))
        expected = jensenshannon([p.get(b, 0) for b in bins], [q.get(b, 0) for b in bins], base=2)
        assert js_distance(p, q) == pytest.approx(float(expected), abs=1e-12)

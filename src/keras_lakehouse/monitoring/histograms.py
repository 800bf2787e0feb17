"""Feature histograms and the distance between two of them.

A profile describes each feature by counts over bins: numeric features over the bins whose edges
the *training* profile fixed (its deciles, open at both ends, so a later value outside the
training range still lands in a bin), categorical features by value. A later profile is counted on
the training profile's edges, so the two line up bin by bin.

Drift is the **Jensen–Shannon distance** (base 2, in [0, 1]) between the two normalised
histograms. Chosen over the population stability index because it is bounded, symmetric and
defined when a bin is empty on one side (PSI is infinite there and needs an arbitrary epsilon,
which then decides the value); Databricks Lakehouse Monitoring reports it as ``js_distance`` too.

Small batches are noisy: with *k* bins and *n* rows the distance between two samples of the same
distribution grows like sqrt(k / n). ``coarsen`` merges adjacent quantile bins until each expects
at least ``min_rows_per_bin`` rows of the smaller side, so a 24-row batch is compared over four
bins, not ten.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

NUMERIC, CATEGORICAL = "numeric", "categorical"
SIGNIFICANT_DIGITS = 10  # edges are rounded to this, and bins named with it: names stay unique
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Histogram:
    """One feature's counts: over ``edges`` (numeric) or by value (categorical).

    A numeric histogram with edges ``e1 < … < ek`` has ``k + 1`` bins:
    ``(-inf, e1)``, ``[e1, e2)``, …, ``[ek, +inf)``; ``counts`` lists them in that order.
    Nulls (a value that could not be computed) are counted apart and never compared.
    """

    kind: Kind
    counts: dict[str, int]
    edges: tuple[float, ...] = ()
    nulls: int = 0
    stats: dict[str, float] = field(default_factory=dict)  # mean, std (numeric)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "counts": dict(self.counts)}
        if self.kind == NUMERIC:
            found["edges"] = list(self.edges)
            found["stats"] = dict(self.stats)
        found["nulls"] = self.nulls
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(
            kind=data["kind"],
            counts={str(key): int(value) for key, value in data["counts"].items()},
            edges=tuple(float(edge) for edge in data.get("edges", ())),
            nulls=int(data.get("nulls", 0)),
            stats={key: float(value) for key, value in data.get("stats", {}).items()},
        )


def bin_names(edges: Sequence[float]) -> list[str]:
    """The names of the bins over ``edges``, in order (also their keys in ``counts``)."""
    bounds = [-math.inf, *edges, math.inf]
    names = []
    for index, (lower, upper) in enumerate(itertools.pairwise(bounds)):
        if upper == math.nextafter(lower, math.inf):
            names.append(f"= {_number(lower)}")
        elif index > 0 and lower == math.nextafter(bounds[index - 1], math.inf):
            names.append(f"({_number(bounds[index - 1])}, {_number(upper)})")
        else:
            left = "(" if math.isinf(lower) else "["
            names.append(f"{left}{_number(lower)}, {_number(upper)})")
    return names


def bin_bounds(edges: Sequence[float]) -> list[tuple[float | None, float | None]]:
    """Each bin's lower and upper bound (``None`` for an open end), in ``bin_names`` order."""
    bounds: list[float | None] = [None, *edges, None]
    return list(itertools.pairwise(bounds))


def deciles_to_edges(quantiles: Sequence[float | None]) -> tuple[float, ...]:
    """Edges from a feature's training deciles: distinct (to ``SIGNIFICANT_DIGITS``), sorted,
    and closed by an edge just above the largest, so that a value above every training decile
    has a bin of its own. A constant feature (all deciles equal *c*) gets the bins below *c*,
    exactly *c* and above *c*: any change of it is seen."""
    distinct = sorted(
        {float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in quantiles if value is not None}
    )
    if not distinct:
        return ()
    return (*distinct, math.nextafter(distinct[-1], math.inf))


def js_distance(reference: Mapping[str, float], current: Mapping[str, float]) -> float:
    """Jensen–Shannon distance (base 2) between two histograms given as counts by bin.

    Args:
        reference: Counts by bin (the training profile).
        current: Counts by bin (this run); bins missing on one side count 0.

    Returns:
        0 for the same distribution, 1 for disjoint ones.

    Raises:
        ValueError: When a side has no counts at all.
    """
    bins = sorted(set(reference) | set(current))
    p = _normalised([reference.get(name, 0) for name in bins], "reference")
    q = _normalised([current.get(name, 0) for name in bins], "current")
    divergence = 0.0
    for a, b in zip(p, q, strict=True):
        middle = (a + b) / 2
        if a > 0:
            divergence += 0.5 * a * math.log2(a / middle)
        if b > 0:
            divergence += 0.5 * b * math.log2(b / middle)
    return math.sqrt(max(0.0, min(1.0, divergence)))


def coarsen(
    reference: Histogram, current: Histogram, *, min_rows_per_bin: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Both numeric histograms over merged adjacent bins, so that each bin expects at least
    ``min_rows_per_bin`` rows of the smaller sample (categorical ones are returned as they are).

    The training bins are deciles (about equal mass), so merging runs of consecutive bins keeps
    the merged bins about equal in mass too.
    """
    if reference.kind != NUMERIC:
        return dict(reference.counts), dict(current.counts)
    names = bin_names(reference.edges)
    smaller = min(reference.rows, current.rows)
    groups = max(2, min(len(names), smaller // max(1, min_rows_per_bin)))
    if groups >= len(names):
        return (
            {name: reference.counts.get(name, 0) for name in names},
            {name: current.counts.get(name, 0) for name in names},
        )
    merged_reference: dict[str, int] = {}
    merged_current: dict[str, int] = {}
    for index, name in enumerate(names):
        group = f"group {index * groups // len(names)}"
        merged_reference[group] = merged_reference.get(group, 0) + reference.counts.get(name, 0)
        merged_current[group] = merged_current.get(group, 0) + current.counts.get(name, 0)
    return merged_reference, merged_current


def _normalised(values: list[float], side: str) -> list[float]:
    total = float(sum(values))
    if total <= 0:
        raise ValueError(f"Expected counts on the {side} side. Received: none.")
    return [value / total for value in values]


def _number(value: float) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.{SIGNIFICANT_DIGITS}g}"

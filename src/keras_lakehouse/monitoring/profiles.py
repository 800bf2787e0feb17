"""Profiles: feature histograms computed by Spark, kept as a small JSON document.

``profile_frame`` turns a DataFrame of feature columns into one ``Histogram`` per feature in
three Spark jobs at most (deciles for the edges when no reference fixes them, counts per bin, mean
and standard deviation); only the histograms — features × bins — reach the driver. The feature
frame is cached for those jobs (image features decode every image once, not three times).

A profile document::

    {"schema": 1, "scope": "training" | "inference", "modality": "image" | "text",
     "model": {"name": ..., "version": ..., "run_id": ...}, "source": {...}, "rows": N,
     "features": {"width": {"kind": "numeric", "edges": [...], "counts": {...}, ...}, ...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from keras_lakehouse.monitoring.histograms import (
    CATEGORICAL,
    NUMERIC,
    Histogram,
    bin_bounds,
    bin_names,
    deciles_to_edges,
)

PROFILE_SCHEMA = 1
DECILES = tuple(step / 10 for step in range(1, 10))
QUANTILE_ERROR = 0.001
NULL_BIN = "null"


def profile_frame(
    frame: DataFrame,
    features: Mapping[str, str],
    *,
    reference: Mapping[str, Histogram] | None = None,
    fixed_edges: Mapping[str, tuple[float, ...]] | None = None,
) -> dict[str, Histogram]:
    """One histogram per feature of ``frame``.

    Args:
        frame: One row per item, a column per feature.
        features: Feature name → ``numeric`` or ``categorical``.
        reference: Histograms whose edges the numeric features are counted on (the training
            profile); without one, a feature's edges are its deciles in ``frame``.
        fixed_edges: Edges that do not come from the data (e.g. for a probability).

    Returns:
        The histograms by feature name.
    """
    cached = frame.select(*features).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        edges = _edges(cached, features, reference or {}, fixed_edges or {})
        counts = _counts(cached, features, edges)
        stats = _stats(cached, [name for name, kind in features.items() if kind == NUMERIC])
    finally:
        cached.unpersist()
    histograms = {}
    for name, kind in features.items():
        found = counts.get(name, {})
        nulls = found.pop(NULL_BIN, 0)
        if kind == NUMERIC:
            names = bin_names(edges[name])
            histograms[name] = Histogram(
                kind=NUMERIC,
                counts={bin_name: found.get(bin_name, 0) for bin_name in names},
                edges=edges[name],
                nulls=nulls,
                stats=stats.get(name, {}),
            )
        else:
            histograms[name] = Histogram(kind=CATEGORICAL, counts=found, nulls=nulls)
    return histograms


def values_histogram(values: np.ndarray, edges: tuple[float, ...]) -> Histogram:
    """A numeric histogram of values already on the driver (e.g. model outputs per batch)."""
    index = np.searchsorted(np.asarray(edges), values, side="right")
    names = bin_names(edges)
    counts = np.bincount(index, minlength=len(names))
    return Histogram(
        kind=NUMERIC,
        counts={name: int(count) for name, count in zip(names, counts, strict=True)},
        edges=edges,
        stats={"mean": float(np.mean(values)), "std": float(np.std(values))} if len(values) else {},
    )


def categories_histogram(values: Iterable[str]) -> Histogram:
    """A categorical histogram of values already on the driver."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return Histogram(kind=CATEGORICAL, counts=counts)


def profile_document(
    *,
    scope: str,
    modality: str,
    model: Mapping[str, Any],
    source: Mapping[str, Any],
    rows: int,
    histograms: Mapping[str, Histogram],
) -> dict[str, Any]:
    """The JSON document of a profile (see the module docstring)."""
    return {
        "schema": PROFILE_SCHEMA,
        "scope": scope,
        "modality": modality,
        "model": dict(model),
        "source": dict(source),
        "rows": rows,
        "features": {name: histogram.to_dict() for name, histogram in histograms.items()},
    }


def histograms_of(document: Mapping[str, Any]) -> dict[str, Histogram]:
    """The histograms of a profile document.

    Raises:
        ValueError: When the document is not a profile this version can read.
    """
    if document.get("schema") != PROFILE_SCHEMA or "features" not in document:
        raise ValueError(
            f"Expected a monitoring profile of schema {PROFILE_SCHEMA}. Received: a document "
            f"with schema {document.get('schema')!r}."
        )
    return {name: Histogram.from_dict(data) for name, data in document["features"].items()}


def profile_rows(document: Mapping[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The ``monitoring_profiles`` rows of a profile document: one per feature and bin."""
    rows = []
    model = document["model"]
    for name, histogram in histograms_of(document).items():
        bounds = (
            dict(zip(bin_names(histogram.edges), bin_bounds(histogram.edges), strict=True))
            if histogram.kind == NUMERIC
            else {}
        )
        counts = {**histogram.counts, **({NULL_BIN: histogram.nulls} if histogram.nulls else {})}
        for bin_name, count in counts.items():
            lower, upper = bounds.get(bin_name, (None, None))
            rows.append(
                {
                    "run_id": run_id,
                    "scope": document["scope"],
                    "modality": document["modality"],
                    "model_name": str(model["name"]),
                    "model_version": str(model["version"]),
                    "feature": name,
                    "kind": histogram.kind,
                    "bin": bin_name,
                    "lower": lower,
                    "upper": upper,
                    "count": int(count),
                }
            )
    return rows


def _edges(
    frame: DataFrame,
    features: Mapping[str, str],
    reference: Mapping[str, Histogram],
    fixed: Mapping[str, tuple[float, ...]],
) -> dict[str, tuple[float, ...]]:
    edges: dict[str, tuple[float, ...]] = {}
    to_measure = []
    for name, kind in features.items():
        if kind != NUMERIC:
            continue
        if name in fixed:
            edges[name] = tuple(fixed[name])
        elif name in reference:
            edges[name] = reference[name].edges
        else:
            to_measure.append(name)
    if to_measure:
        quantiles = frame.approxQuantile(to_measure, list(DECILES), QUANTILE_ERROR)
        for name, found in zip(to_measure, quantiles, strict=True):
            edges[name] = deciles_to_edges(found)
    return edges


def _counts(
    frame: DataFrame, features: Mapping[str, str], edges: Mapping[str, tuple[float, ...]]
) -> dict[str, dict[str, int]]:
    cells = [
        F.struct(F.lit(name).alias("feature"), _bin(name, kind, edges.get(name, ())).alias("bin"))
        for name, kind in features.items()
    ]
    rows = (
        frame.select(F.explode(F.array(*cells)).alias("cell"))
        .groupBy("cell.feature", "cell.bin")
        .count()
        .collect()  # features x bins rows
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["feature"], {})[row["bin"]] = int(row["count"])
    return counts


def _bin(name: str, kind: str, edges: tuple[float, ...]) -> Column:
    value = F.col(name)
    if kind != NUMERIC:
        return F.coalesce(value.cast("string"), F.lit(NULL_BIN))
    names = bin_names(edges)
    index = sum((F.when(value >= edge, 1).otherwise(0) for edge in edges), F.lit(0))
    label = F.element_at(F.array(*(F.lit(bin_name) for bin_name in names)), index + 1)
    return F.when(value.isNull() | F.isnan(value), F.lit(NULL_BIN)).otherwise(label)


def _stats(frame: DataFrame, numeric: list[str]) -> dict[str, dict[str, float]]:
    if not numeric:
        return {}
    row = frame.agg(
        *(F.mean(name).alias(f"{name}__mean") for name in numeric),
        *(F.stddev_pop(name).alias(f"{name}__std") for name in numeric),
    ).first()
    return {
        name: {
            stat: float(row[f"{name}__{stat}"])
            for stat in ("mean", "std")
            if row[f"{name}__{stat}"] is not None
        }
        for name in numeric
    }

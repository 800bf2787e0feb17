"""The monitoring report: pictures first (training vs. now per feature, drift against its
thresholds, quality over time), then the table of every judged value; one self-contained HTML page
(the PNGs embedded) beside the PNGs themselves.

matplotlib is imported when a figure is drawn, not with this module.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keras_lakehouse.monitoring.histograms import Histogram, bin_names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLUMNS = 4
STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "not_judged": "#757575"}


def drift_figure(
    title: str,
    reference: Mapping[str, Histogram] | None,
    current: Mapping[str, Histogram],
    drift: Sequence[Mapping[str, Any]],
) -> Figure:
    """Per feature: the training and current shares per bin; then the drift bars."""
    from matplotlib.figure import Figure

    judged = {row["metric"]: row for row in drift}
    names = list(current)
    rows = math.ceil((len(names) + 1) / COLUMNS)
    figure = Figure(figsize=(4 * COLUMNS, 2.8 * rows), layout="constrained")
    figure.suptitle(title)
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, COLUMNS, index + 1)
        now = current[name]
        before = (reference or {}).get(name)
        bins = bin_names(now.edges) if now.kind == "numeric" else _categories(before, now)
        positions = range(len(bins))
        if before is not None and before.rows:
            axes.bar(
                [p - 0.2 for p in positions],
                _shares(before, bins),
                width=0.4,
                label="training",
                color="#90a4ae",
            )
        axes.bar([p + 0.2 for p in positions], _shares(now, bins), width=0.4, label="now")
        axes.set_xticks(list(positions), [_short(b) for b in bins], rotation=60, fontsize=6)
        row = judged.get(name, {})
        value = row.get("value")
        axes.set_title(
            f"{name}: {_value(value)} ({row.get('status', '')})",
            color=STATUS_COLOURS.get(row.get("status", ""), "black"),
            fontsize=9,
        )
        if index == 0:
            axes.legend(fontsize=7)
    axes = figure.add_subplot(rows, COLUMNS, len(names) + 1)
    measured = [
        row for row in drift if row["value"] is not None and row["statistic"] == "js_distance"
    ]
    axes.barh(
        [row["metric"] for row in measured],
        [row["value"] for row in measured],
        color=[STATUS_COLOURS[row["status"]] for row in measured],
    )
    for row in measured[:1]:
        axes.axvline(row["warn"], color=STATUS_COLOURS["warn"], linestyle="--", label="warn")
        axes.axvline(row["fail"], color=STATUS_COLOURS["fail"], linestyle="--", label="fail")
    axes.set_xlim(0, 1)
    axes.set_title("drift (Jensen–Shannon distance)", fontsize=9)
    axes.tick_params(labelsize=7)
    return figure


def quality_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Accuracy and macro-F1 per model version over the scoring runs that measured them."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), layout="constrained")
    axes = figure.add_subplot()
    series: dict[str, list[tuple[Any, float]]] = {}
    for row in history:
        label = f"{row['model_name']} v{row['model_version']} {row['statistic']}"
        series.setdefault(label, []).append((row["computed_at"], float(row["value"])))
    for label, points in sorted(series.items()):
        points.sort()
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axes.set_ylim(0, 1.05)
    axes.set_title("live quality (predictions with a true label)")
    if series:
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, "no labels yet", ha="center", transform=axes.transAxes)
    return figure


def report_html(
    title: str, figures: Mapping[str, Figure], rows: Sequence[Mapping[str, Any]]
) -> str:
    """One page: the figures (embedded PNGs), then every judged value with its status."""
    images = "\n".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{_png_base64(figure)}">'
        for name, figure in figures.items()
    )
    header = "".join(
        f"<th>{column}</th>"
        for column in ("modality", "model", "metric", "statistic", "value", "warn", "fail")
    )
    body = "\n".join(
        "<tr>"
        f"<td>{html.escape(str(row['modality']))}</td>"
        f"<td>{html.escape(str(row['model_name']))} v{html.escape(str(row['model_version']))}</td>"
        f"<td>{html.escape(str(row['metric']))}</td><td>{row['statistic']}</td>"
        f"<td style='color:{STATUS_COLOURS[row['status']]}'>"
        f"{_value(row['value'])} ({row['status']})</td>"
        f"<td>{row['warn']}</td><td>{row['fail']}</td></tr>"
        for row in rows
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{images}<h2>Every measurement</h2>"
        f"<table><tr>{header}</tr>{body}</table></body></html>"
    )


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _categories(before: Histogram | None, now: Histogram) -> list[str]:
    return sorted(set(now.counts) | set(before.counts if before else {}))


def _shares(histogram: Histogram, bins: list[str]) -> list[float]:
    total = histogram.rows or 1
    return [histogram.counts.get(name, 0) / total for name in bins]


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")

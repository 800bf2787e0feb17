"""The markdown report of the scale benchmark, its goals, and the files it is written to."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import cell as spread_cell
from bench import verdict

GOAL_SCALE = 32
BASE_SCALE = 1
GOAL_PLUS_ONE = 0.10  # +1 % run ≤ 10 % of the full run, at ×32
GOAL_NO_CHANGE = 0.05  # no-change run ≤ 5 % of the full run, at ×32
GOAL_FLOOR = 0.5  # ingestion images/s ≥ 0.5 × the floor's, at every scale
GOAL_MEMORY = 1.25  # driver peak RSS at ×32 ≤ 1.25 × that at ×1
RESULT_PREFIX = "scale-"


def cell(summary: dict[str, Any], digits: int = 0) -> str:
    """``median (min–max)``, or the value alone when it was measured once."""
    if len(summary["values"]) == 1:
        return format(summary["median"], f",.{digits}f")
    return spread_cell(summary, digits)


STAGE_NAMES = {
    "startup": "start-up",
    "ingestion": "ingestion",
    "data_quality": "data quality",
    "preprocessing": "preprocessing",
}


def goals(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, met) for each goal; met is None when not measured."""
    scales = results["scales"]
    top = scales.get(str(GOAL_SCALE))
    base = scales.get(str(BASE_SCALE))
    rows: list[tuple[str, str, bool | None]] = []
    for kind, name, goal in (
        ("+1 %", "+1 %", GOAL_PLUS_ONE),
        ("no change", "no-change", GOAL_NO_CHANGE),
    ):
        label = f"×{GOAL_SCALE}: {name} run ≤ {goal:.0%} of the full run"
        if top is None:
            rows.append((label, f"not measured (quick: ×{GOAL_SCALE} skipped)", None))
        else:
            fraction = top[f"{kind} fraction"]
            work = top[f"{kind} work fraction"]
            measured = f"{fraction:.1%} ({work:.1%} without the process start-up)"
            rows.append((label, measured, fraction <= goal))
    ratios = {scale: item["ingestion_to_floor"] for scale, item in scales.items()}
    rows.append(
        (
            f"ingestion images/s ≥ {GOAL_FLOOR} × the floor's (every scale)",
            ", ".join(f"×{scale}: {ratio:.2f}" for scale, ratio in ratios.items()),
            all(ratio >= GOAL_FLOOR for ratio in ratios.values()),
        )
    )
    label = f"driver peak RSS ×{GOAL_SCALE} ≤ {GOAL_MEMORY} × ×{BASE_SCALE}"
    if top is None or base is None:
        rows.append((label, f"not measured (quick: ×{GOAL_SCALE} skipped)", None))
    else:
        ratio = top["driver_peak_mib"]["median"] / base["driver_peak_mib"]["median"]
        measured = (
            f"{ratio:.2f} ({top['driver_peak_mib']['median']:,.0f} / "
            f"{base['driver_peak_mib']['median']:,.0f} MiB)"
        )
        rows.append((label, measured, ratio <= GOAL_MEMORY))
    return rows


def _scale_row(scale: str, item: dict[str, Any]) -> str:
    seconds, repeats = item["seconds"], item["repeats"]
    return (
        f"| ×{scale} | {item['images']:,} | {cell(seconds['full'], 1)}"
        f" | {cell(item['pipeline_rate'])} | {cell(item['ingestion_rate'])}"
        f" | {cell(item['floor_rate'])} | {item['ingestion_to_floor']:.2f}"
        f" | {cell(seconds['+1 %'], 1)} | {item['+1 % fraction']:.1%}"
        f" | {cell(seconds['no change'], 1)} | {item['no change fraction']:.1%}"
        f" | {cell(item['driver_peak_mib'])}"
        f" | {repeats['full']}/{repeats['floor']}/{repeats['no change']}/{repeats['+1 %']} |"
    )


def _stage_rows(scale: str, item: dict[str, Any]) -> list[str]:
    rows = []
    for kind in ("full", "+1 %", "no change", "floor"):
        stages = item["stages"][kind]
        values = [stages.get(name) for name in STAGE_NAMES]
        if kind == "floor":
            values[1] = stages["scan"]  # the scan stands in the ingestion column
        shown = " | ".join("—" if value is None else f"{value:.1f}" for value in values)
        rows.append(f"| ×{scale} | {kind} | {shown} | {item['seconds'][kind]['median']:.1f} |")
    return rows


def render(results: dict[str, Any]) -> str:
    """The markdown report of one run."""
    scales = results["scales"]
    header = (
        "| Scale | images | full run s | images/s (full run) | ingestion images/s | "
        "floor images/s | ingestion / floor | +1 % run s | +1 % / full | no-change run s | "
        "no change / full | driver peak RSS MiB (full run) | repeats full/floor/no change/+1 % |"
    )
    lines = [
        f"## Scale benchmark — {results['timestamp']}",
        "",
        header,
        "|" + "---|" * header.count(" | ") + "---|",
        *(_scale_row(scale, item) for scale, item in scales.items()),
        "",
        "Median (min–max) over alternating repeats, the value alone when measured once (full and "
        "floor A B A B, then no change and "
        "+1 % A B A B). Run seconds count from the start of the process to the end of "
        "preprocessing (interpreter, Kedro and Spark start-up included); ingestion and floor "
        "images/s count the ingestion stage and the scan alone, the Spark session already up. "
        "Driver RSS: the Python process + its JVM, sampled together every 0.25 s.",
        "",
        "Goals:",
        "",
        "| Goal | Measured | |",
        "|---|---|---|",
        *(
            f"| {goal} | {measured} | {'—' if met is None else verdict(met)} |"
            for goal, measured, met in goals(results)
        ),
        "",
        "Where the time goes (medians, seconds; the floor's scan in the ingestion column):",
        "",
        "| Scale | run | " + " | ".join(STAGE_NAMES.values()) + " | whole run |",
        "|---|---|" + "---|" * (len(STAGE_NAMES) + 1),
        *(row for scale, item in scales.items() for row in _stage_rows(scale, item)),
        "",
    ]
    data = "; ".join(
        f"×{scale}: {item['data']['images']:,} files "
        f"({item['data']['good_images_per_label']:,} good images per label), "
        f"+1 % = {item['data']['delivery_images']} files, "
        + (
            "reused"
            if item["data"]["reused"]
            else f"generated in {item['data']['setup_seconds']:.0f} s"
        )
        for scale, item in scales.items()
    )
    loads = [
        load
        for item in scales.values()
        for runs in item["runs"].values()
        for run in runs
        for load in run["load_average"]
    ]
    memory = "; ".join(
        f"×{scale}: Python {_high_water(item, 'python'):,.0f} + JVM {_high_water(item, 'jvm'):,.0f}"
        for scale, item in scales.items()
    )
    host = results["machine"]
    lines += [
        f"- Data: {data}",
        f"- Driver high-water marks (VmHWM, MiB, full runs, medians): {memory}",
        f"- Load average (1 min) seen by the runs: {min(loads):.1f}–{max(loads):.1f} "
        f"(start {results['load_average_start'][0]:.1f}, "
        f"end {results['load_average_end'][0]:.1f})",
        f"- Machine: {host['nproc']} CPUs ({host['cpu']}), {host['memory_gib']} GiB, "
        f"{host['platform']}, Python {host['python']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- Total runtime: {results['total_seconds']:.0f} s"
        + (" (quick: ×32 skipped)" if results["quick"] else ""),
        "",
    ]
    return "\n".join(lines)


def _high_water(item: dict[str, Any], role: str) -> float:
    return statistics.median(run["high_water_mib"][role] for run in item["runs"]["full"])


def write_results(results: dict[str, Any], report: str, folder: Path) -> Path:
    """``scale-<timestamp>.json/.md`` and ``scale-latest.json/.md`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = results["timestamp"].replace(":", "").replace("-", "")
    payload = json.dumps(results, indent=2, default=str)
    for name in (f"{RESULT_PREFIX}{stamp}", f"{RESULT_PREFIX}latest"):
        (folder / f"{name}.json").write_text(payload)
        (folder / f"{name}.md").write_text(report)
    return folder / f"{RESULT_PREFIX}{stamp}.md"

"""The data-quality gate: which checks of a report stop the run.

The gate fails on table-level checks only (columns, row counts, uniqueness, class balance, the
fraction of rows this run rejected): one bad file, or a poisoned row already in bronze, cannot
stop every later run. Per-row checks are still validated and reported (ingestion quarantines the
rows that break them; see ``row_rules``). A check Great Expectations could not evaluate fails the
gate whatever its severity.
"""

from __future__ import annotations

from typing import Any

from keras_lakehouse.quality.checks import FAILED, NOT_EVALUATED, PASSED, describe_check
from keras_lakehouse.quality.row_rules import is_row_check

REJECTED_FRACTION = "rejected_fraction"


def rejected_fraction_check(counts: dict[str, Any], limit: float) -> dict[str, Any]:
    """A table-level check: the share of this run's raw records that went to quarantine.

    Args:
        counts: The last ingestion's counts (``raw`` and ``quarantine``).
        limit: The largest share of quarantined records that passes.

    Returns:
        An error-severity check record (see ``quality.checks``).
    """
    raw = int(counts.get("raw") or 0)
    fraction = int(counts.get("quarantine") or 0) / raw if raw else 0.0
    return {
        "expectation": REJECTED_FRACTION,
        "kwargs": {"max_fraction": limit},
        "severity": "error",
        "status": PASSED if fraction <= limit else FAILED,
        "observed": f"{fraction:.4f} of {raw} raw records quarantined in the last ingestion",
    }


def gate_failures(report: dict[str, Any]) -> list[str]:
    """Say why ``report`` must stop the run: error-severity failures and unevaluated checks.

    A check GX could not evaluate fails the gate whatever its severity: a broken check is a
    broken gate, not a warning. A failed per-row check does not (ingestion quarantines such
    rows; see the module docstring): it is reported.

    Args:
        report: A suite report with its ``checks``.

    Returns:
        One line per check that stops the run; empty when the gate passes.
    """
    return [
        f"{describe_check(check)}: {check['status'].replace('_', ' ')}; "
        f"observed {check['observed']}"
        for check in report["checks"]
        if check["status"] == NOT_EVALUATED
        or (
            check["status"] == FAILED
            and check["severity"] == "error"
            and not is_row_check(check["expectation"])
        )
    ]

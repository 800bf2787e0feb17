"""A data-quality report as a self-contained HTML page for a person to read."""

from __future__ import annotations

import html
from typing import Any

from keras_lakehouse.quality.checks import describe_check


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the report for a person to read.

    Args:
        report: A suite report: ``table``, ``success``, ``validated_at``,
            ``great_expectations_version``, ``checks`` and ``class_distribution``.

    Returns:
        The page, every value from the report HTML-escaped.
    """
    rows = "\n".join(
        "<tr class='{status}'><td>{name}</td><td>{severity}</td><td>{status}</td>"
        "<td>{observed}</td></tr>".format(
            status=html.escape(check["status"]),
            name=html.escape(describe_check(check)),
            severity=html.escape(check["severity"]),
            observed=html.escape(str(check["observed"])),
        )
        for check in report["checks"]
    )
    distribution = ", ".join(
        f"{html.escape(str(label))}: {share:.1%}"
        for label, share in report.get("class_distribution", {}).items()
    )
    verdict = "PASSED" if report["success"] else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data quality: {html.escape(report["table"])} — {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
tr.passed td:nth-child(3) {{ color: #1a7f37; }} tr.failed td:nth-child(3) {{ color: #cf222e; }}
tr.not_evaluated td:nth-child(3) {{ color: #9a6700; font-weight: bold; }}
</style></head><body>
<h1>Data quality: {html.escape(report["table"])} — {verdict}</h1>
<p>Validated at {html.escape(report["validated_at"])} with Great Expectations
{html.escape(report["great_expectations_version"])}.</p>
<p>Class distribution: {distribution or "n/a"}</p>
<table><thead><tr><th>Expectation</th><th>Severity</th><th>Status</th><th>Observed</th></tr>
</thead><tbody>
{rows}
</tbody></table>
</body></html>
"""

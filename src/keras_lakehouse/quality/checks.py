"""The check record every data-quality module shares: its statuses and how it is named.

A check is a JSON-ready dict with ``expectation``, ``kwargs``, ``severity``, ``status`` (one of
``PASSED``, ``FAILED``, ``NOT_EVALUATED``) and ``observed``.
"""

from __future__ import annotations

from typing import Any

PASSED, FAILED, NOT_EVALUATED = "passed", "failed", "not_evaluated"


def describe_check(check: dict[str, Any]) -> str:
    """One line naming a check, e.g. ``expect_column_values_to_be_unique(column=key) [error]``.

    Args:
        check: A check record (see the module docstring).

    Returns:
        The expectation, its kwargs and its severity.
    """
    kwargs = ", ".join(f"{key}={value}" for key, value in check["kwargs"].items())
    return f"{check['expectation']}({kwargs}) [{check['severity']}]"

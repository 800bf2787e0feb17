"""Quarantine reasons are defined once, in ``ingest/reasons.py``."""

from __future__ import annotations

import ast
from pathlib import Path

from keras_lakehouse.ingest import reasons

SOURCE = Path(reasons.__file__).resolve().parents[1]  # src/keras_lakehouse
REASONS_MODULE = Path(reasons.__file__).resolve()


def string_constants(path: Path) -> list[tuple[str, str, int]]:
    """``(name, value, line)`` of each module-level ``NAME = "value"`` (or annotated) of a file."""
    found = []
    for statement in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.extend(
                (target.id, value.value, statement.lineno)
                for target in targets
                if isinstance(target, ast.Name)
            )
    return found


def test_no_other_module_defines_a_reason() -> None:
    modules = sorted(path for path in SOURCE.rglob("*.py") if path.resolve() != REASONS_MODULE)
    assert len(modules) > 20  # the scan sees the package
    redefined = [
        f"{path.relative_to(SOURCE)}:{line} {name} = {value!r}"
        for path in modules
        for name, value, line in string_constants(path)
        if value in reasons.ALL_REASONS
    ]
    assert not redefined, (
        "Expected every quarantine reason to be imported from keras_lakehouse.ingest.reasons. "
        f"Received definitions elsewhere: {redefined}"
    )


def test_the_scan_finds_a_redefinition(tmp_path: Path) -> None:
    module = tmp_path / "elsewhere.py"
    module.write_text('TOO_LARGE = "too_large"\nNOTE: str = "corrupt"\nOTHER = "fine"\n')
    assert string_constants(module) == [
        ("TOO_LARGE", "too_large", 1),
        ("NOTE", "corrupt", 2),
        ("OTHER", "fine", 3),
    ]


def test_each_reason_has_one_name_and_belongs_to_a_modality() -> None:
    defined = string_constants(REASONS_MODULE)
    values = [value for _, value, _ in defined]
    assert len(values) == len(set(values)), f"Expected one name per reason. Received: {defined}"
    assert set(values) == reasons.ALL_REASONS
    assert reasons.IMAGE_DECODE_REASONS < reasons.IMAGE_REASONS
    assert reasons.TEXT_PARSE_REASONS < reasons.TEXT_REASONS
    shared = reasons.IMAGE_REASONS & reasons.TEXT_REASONS
    assert shared == {
        reasons.EMPTY_FILE,
        reasons.UNKNOWN_LABEL,
        reasons.UNSUPPORTED_FORMAT,
        reasons.TOO_LARGE,  # a file above max_bytes, quarantined unread
        reasons.UNREADABLE,  # a logged file that vanished or grew past the cap
    }

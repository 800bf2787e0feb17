"""What a registered model may run: verified files and reviewed code only.

At registration the gate records ``content_sha256`` on the model version: one SHA-256 over every
file of the logged model (paths and bytes). Whoever loads a version through this package —
batch inference on the executors, the champion re-scoring, the predict command — checks that
digest on the files it is about to load, and checks that the Python the model carries (its entry
file and its copy of ``serving_code.py``) is a version this package lists as reviewed. So a
version registered by hand, a moved alias, or a changed file in the artifact store or the model
cache never runs code on the driver, the executors or a user's shell: it fails with a clear
error. (Databricks Model Serving runs the model's carried code itself; it is the same reviewed
code when the version came through the gate.)

Changing ``serving_code.py`` or ``serving_model.py``: add the new file's SHA-256 to
``REVIEWED_CODE`` (tests/serving/test_integrity.py says which) — old versions keep loading with
theirs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGEST_TAG = "content_sha256"
_CHUNK = 1 << 20

# SHA-256 of every reviewed version of the code a registered model carries.
REVIEWED_CODE: dict[str, str] = {
    "ce4dac6f219412ffa7a4679330200d6f860607f4e1efe6cbb3259c86364ef57e": "serving_model.py 2026-12",
    "bb20d90690d7aa8bdaf12636aab98938e16f8a16eeeaa51157b416e430fd3537": "serving_model.py 2026-12b",
    "6a5786fb682bab248cccfc12d199a02a3fab4652ccdf9760267e358f284ecff8": "serving_code.py 2026-12",
}
CODE_FILES = ("serving_model.py", "serving_code.py")


class ModelIntegrityError(RuntimeError):
    """A model version's files differ from what was registered, or carry unreviewed code."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digest(folder: str | Path) -> str:
    """One SHA-256 over every file under ``folder``: relative paths and contents, sorted.
    (Python's bytecode caches, written when the model's code is imported, are not part of it.)"""
    root = Path(folder)
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in sorted(files):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def require_digest(expected: str | None, *, model: str) -> str:
    """``expected``, or ``ModelIntegrityError`` when the version has no recorded digest."""
    if not expected:
        raise ModelIntegrityError(
            f"{model} has no {DIGEST_TAG} tag: it was not registered by this project's gate "
            "(or before checksums existed). Register it again with `kedro run --pipelines="
            "evaluation` after training."
        )
    return expected


def verify_model_folder(folder: str | Path, expected: str | None, *, model: str) -> None:
    """Raise ``ModelIntegrityError`` unless ``folder`` has the registered digest and carries only
    reviewed code.

    Args:
        folder: The downloaded model version (its ``MLmodel`` at the top).
        expected: The version's ``content_sha256`` tag (``None`` when it has none).
        model: ``name vN``, for the messages.
    """
    require_digest(expected, model=model)
    actual = folder_digest(folder)
    if actual != expected:
        raise ModelIntegrityError(
            f"{model}: its files do not match what was registered ({DIGEST_TAG} {expected[:12]}…,"
            f" found {actual[:12]}… in {folder}). Refusing to load it."
        )
    for name in CODE_FILES:
        for path in Path(folder).rglob(name):
            if file_sha256(path) not in REVIEWED_CODE:
                raise ModelIntegrityError(
                    f"{model} carries a {name} that is not a reviewed version of this package's "
                    f"serving code (sha256 {file_sha256(path)[:12]}…). Refusing to run it."
                )

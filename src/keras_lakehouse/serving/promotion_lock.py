"""A lock in the model registry, so that two evaluations never move ``champion`` at once.

The registry has no compare-and-set for aliases, but creating a registered model is atomic in
every MLflow registry this project uses (a unique name in the SQL store, in Unity Catalog and in
the stand-in): whoever creates ``<model>_promotion_lock`` holds the lock, and deleting it releases
it. It lives for the second or two an evaluation needs to re-read the alias, write its decision
tags and move the alias.

A killed evaluation leaves its lock behind. A lock older than ``lease_s`` is presumed abandoned:
it is deleted with a warning and taken. An evaluation that cannot take the lock within
``wait_s`` fails with a message naming the holder and the lock to delete by hand. Releasing
deletes the lock only while it is still the one this evaluation created (a lock broken after its
lease ran out belongs to someone else by then).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

LOCK_SUFFIX = "_promotion_lock"
LEASE_S = 600.0  # a lock older than this is presumed left behind by a killed evaluation
WAIT_S = 900.0  # longer than the lease, so a dead holder's lock is broken before giving up
POLL_S = (0.05, 2.0)  # first and longest pause between attempts
CREATE_ATTEMPTS = 3  # a lock released while its creation was refused is tried again
ALREADY_EXISTS = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}  # MLflow's and Unity Catalog's codes


class PromotionLockTimeoutError(TimeoutError):
    """Another evaluation held the promotion lock for longer than this one would wait."""


def lock_name(model: str) -> str:
    """The registered model that serves as ``model``'s promotion lock (same catalog and schema)."""
    return f"{model}{LOCK_SUFFIX}"


@contextmanager
def promotion_lock(
    client: Any,
    model: str,
    *,
    holder: str,
    lease_s: float = LEASE_S,
    wait_s: float = WAIT_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold ``model``'s promotion lock for the ``with`` block.

    Args:
        client: An ``mlflow.MlflowClient`` on the registry of ``model``.
        model: The registered model whose alias is about to move.
        holder: Who takes the lock (a run id), written into the lock's description.
        lease_s: Age after which a lock is broken as abandoned.
        wait_s: How long to wait for a lock held by someone else.
        clock: Seconds since the epoch (tests move it).
        sleep: Pauses between attempts (tests record them).
    """
    name = lock_name(model)
    deadline = clock() + wait_s
    pause = POLL_S[0]
    while True:
        created = _try_create(client, name, model, holder, clock)
        if created is not None:
            break
        found = _held(client, name)
        if found is None:  # released between the two calls
            continue
        since, description = found
        age = clock() - since
        if age > lease_s:
            logger.warning(
                "%s: breaking the promotion lock %s, held for %.0f s (lease %.0f s): %s",
                model,
                name,
                age,
                lease_s,
                description,
            )
            _delete_if(client, name, since)
            continue
        if clock() >= deadline:
            raise PromotionLockTimeoutError(
                f"{model}: another evaluation has held the promotion lock {name!r} for "
                f"{age:.0f} s ({description}); waited {wait_s:.0f} s. If that evaluation is no "
                f"longer running, delete the registered model {name!r} or wait "
                f"{lease_s - age:.0f} s until its lease runs out, then evaluate again."
            )
        sleep(pause)
        pause = min(pause * 2, POLL_S[1])
    try:
        yield
    finally:
        _delete_if(client, name, created)


def _try_create(
    client: Any, name: str, model: str, holder: str, clock: Callable[[], float]
) -> float | None:
    """Create the lock: its creation time in seconds, or None when it exists already.

    A refusal that leaves no lock behind is tried again (``CREATE_ATTEMPTS`` in all): MLflow's
    SQL store words a refusal by reading the existing lock, and when its holder deletes it in
    between, the error says "not found". Refused every time with no lock held: a real error.
    """
    from mlflow.exceptions import MlflowException

    taken_at = datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
    description = (
        f"Promotion lock of {model}: held by {holder} since {taken_at}; deleted when its "
        "decision is recorded."
    )
    for _ in range(CREATE_ATTEMPTS):
        try:
            created = client.create_registered_model(name, description=description)
        except MlflowException as refused:
            taken = (
                refused.error_code in ALREADY_EXISTS or "already exists" in refused.message.lower()
            )
            if taken or _held(client, name) is not None:
                return None
            error = refused
        else:
            return created.creation_timestamp / 1000
    raise error


def _held(client: Any, name: str) -> tuple[float, str] | None:
    """The lock's creation time (s) and description, or None when nobody holds it."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_registered_model(name)
    except MlflowException:
        return None
    return found.creation_timestamp / 1000, found.description or "no description"


def _delete_if(client: Any, name: str, since: float) -> None:
    """Delete the lock if it is still the one created at ``since``."""
    from mlflow.exceptions import MlflowException

    found = _held(client, name)
    if found is not None and found[0] == since:
        with suppress(MlflowException):  # deleted meanwhile by whoever broke it
            client.delete_registered_model(name)

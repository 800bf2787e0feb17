"""The model registry's quality gate: a hard floor, then ``champion`` only for a real improvement.

Aliases, not the deprecated stages. The decision is recorded where people look for it: tags on
the new model version and on its training run, a log line, and the registration report. The tags
are written before the alias moves (a rejected tag leaves the alias where it was), tag keys follow
Unity Catalog's rules (letters, digits and underscores), and the whole step is safe to repeat:
evaluating the same training run again reuses its model version instead of registering another.

Two evaluations promoting at once: the registry has no compare-and-set for aliases, so the alias
is read again just before it moves (a champion that changed meanwhile is measured in its turn).
A version about to take the alias records its claim (``champion_claim``) and the version it was
compared with (``champion_previous``). After the alias moves, the tags of every version that
claimed it over the same predecessor are made to agree with where the alias is: the holder is
``promoted``, the others ``kept`` with a reason naming the holder. This is repeated until the
alias holds still across a pass, so the last evaluation to move the alias settles every tag.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

DECISION_TAG = "champion_decision"
REASON_TAG = "champion_reason"
PREVIOUS_TAG = "champion_previous"  # the version the decision was made against ("none")
CLAIM_TAG = "champion_claim"  # a promotion's reason, kept while the version claims the alias
DECISION_ROUNDS = 3  # measuring again when the alias moves while deciding
SETTLE_PASSES = 5  # making the claimants' tags agree with the alias until it holds still
PROMOTED, KEPT, REJECTED = "promoted", "kept", "rejected_below_floor"


class QualityFloorError(ValueError):
    """A model below its metric floor: the run fails and nothing is registered."""


def check_floor(model: str, metric: str, value: float, floor: float) -> None:
    """Raise, naming the metric, its value and the floor, when ``value`` is below ``floor``."""
    if value < floor:
        raise QualityFloorError(
            f"{model}: test {metric} {value:.4f} is below the floor {floor:.4f} "
            "(evaluation parameters): the model was not registered."
        )


def register_and_promote(
    *,
    name: str,
    model_uri: str,
    run_id: str,
    metric: str,
    value: float,
    floor: float,
    min_delta: float,
    champion_metric: Callable[[str], float],
    alias: str = "champion",
) -> dict[str, Any]:
    """Register ``model_uri`` as a new version of ``name`` and decide whether it takes ``alias``.

    Args:
        name: Registered model name (three-level ``catalog.schema.model`` on Unity Catalog).
        model_uri: The logged model to register.
        run_id: Its training run (gets the decision tags too).
        metric: The metric compared (e.g. ``macro_f1``), higher is better.
        value: The new model's metric on the test split.
        floor: Below it nothing is registered (``QualityFloorError``).
        min_delta: The new version takes the alias only when it beats the current champion's
            metric by at least this much.
        champion_metric: Computes the current champion's metric on the same test split, given its
            version (called only when a champion exists).
        alias: The alias that serving and batch inference load.

    Returns:
        The registration report: version, decision, reason and both metric values.
    """
    import mlflow

    client = mlflow.MlflowClient()
    try:
        check_floor(name, metric, value, floor)
    except QualityFloorError as error:
        client.set_tag(run_id, DECISION_TAG, REJECTED)
        client.set_tag(run_id, REASON_TAG, str(error))
        raise
    version = _version_of_run(client, name, run_id)
    if version is None:
        version = str(mlflow.register_model(model_uri, name).version)
    _record_digest(client, name, version)
    report: dict[str, Any] = {
        "registered_model": name,
        "version": str(version),
        "metric": metric,
        "value": value,
        "floor": floor,
        "min_delta": min_delta,
        "alias": alias,
        "previous_champion": None,
        "champion_value": None,
    }
    for round_number in range(1, DECISION_ROUNDS + 1):
        current = _alias_holder(client, name, alias)
        decision, reason, compared = _decide(
            version, current, metric, value, min_delta, champion_metric, alias
        )
        report |= {"previous_champion": None, "champion_value": None} | compared
        # Tags first: if the registry rejects one, the alias has not moved.
        _tag_decision(client, name, version, run_id, decision, reason, previous=current)
        _set_claim(client, name, version, reason if decision == PROMOTED else None)
        if decision != PROMOTED or round_number == DECISION_ROUNDS:
            break
        if _alias_holder(client, name, alias) == current:  # nobody moved it meanwhile
            break
        logger.info("%s: %r moved while v%s was evaluated: deciding again.", name, alias, version)
    if decision == PROMOTED:
        client.set_registered_model_alias(name, alias, version)
        decision, reason = _settle(client, name, alias, str(version), current, claim=reason)
    logger.info("%s v%s: %s (%s).", name, version, decision, reason)
    return report | {"decision": decision, "reason": reason}


def _decide(
    version: str,
    current: str | None,
    metric: str,
    value: float,
    min_delta: float,
    champion_metric: Callable[[str], float],
    alias: str,
) -> tuple[str, str, dict[str, Any]]:
    """The decision for ``version`` against the alias holder ``current``: decision, reason and
    the report's ``previous_champion`` and ``champion_value``."""
    if current is None:
        return PROMOTED, f"no version had the alias {alias!r}", {}
    if current == str(version):
        reason = f"v{version} already holds the alias {alias!r}"
        return PROMOTED, reason, {"previous_champion": current}
    champion_value = float(champion_metric(current))
    compared = {"previous_champion": current, "champion_value": champion_value}
    gain = value - champion_value
    if gain >= min_delta:
        reason = (
            f"{metric} {value:.4f} beats champion v{current} ({champion_value:.4f}) "
            f"by {gain:+.4f} >= min_delta {min_delta}"
        )
        return PROMOTED, reason, compared
    reason = (
        f"{metric} {value:.4f} vs champion v{current} ({champion_value:.4f}): "
        f"{gain:+.4f} < min_delta {min_delta}; {alias!r} stays on v{current}"
    )
    return KEPT, reason, compared


def _alias_holder(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _tag_decision(
    client: Any,
    name: str,
    version: str,
    run_id: str | None,
    decision: str,
    reason: str,
    *,
    previous: str | None,
) -> None:
    """The decision on the model version and on its training run."""
    client.set_model_version_tag(name, version, DECISION_TAG, decision)
    client.set_model_version_tag(name, version, REASON_TAG, reason)
    client.set_model_version_tag(name, version, PREVIOUS_TAG, previous or "none")
    if run_id:
        client.set_tag(run_id, DECISION_TAG, decision)
        client.set_tag(run_id, REASON_TAG, reason)


def _set_claim(client: Any, name: str, version: str, reason: str | None) -> None:
    from contextlib import suppress

    from mlflow.exceptions import MlflowException

    if reason is not None:
        client.set_model_version_tag(name, version, CLAIM_TAG, reason)
    elif CLAIM_TAG in client.get_model_version(name, version).tags:
        with suppress(MlflowException):  # already gone
            client.delete_model_version_tag(name, version, CLAIM_TAG)


def _overtaken(claim: str, holder: str | None, alias: str) -> str:
    return (
        f"promotion overtaken: {claim}, but v{holder} took {alias!r} at the same time "
        f"(another evaluation promoting concurrently); {alias!r} stays on v{holder}"
    )


def _settle(
    client: Any, name: str, alias: str, version: str, previous: str | None, *, claim: str
) -> tuple[str, str]:
    """Make the tags of every version that claimed ``alias`` over ``previous`` agree with where
    the alias is, until it holds still across a pass. Returns ``version``'s decision and reason."""
    predecessor = previous or "none"
    mine = (PROMOTED, claim)
    for _ in range(SETTLE_PASSES):
        holder = _alias_holder(client, name, alias)
        for found in client.search_model_versions(f"name='{name}'"):
            other = str(found.version)
            tags = client.get_model_version(name, other).tags
            if tags.get(PREVIOUS_TAG) != predecessor or CLAIM_TAG not in tags:
                continue
            claimed = tags[CLAIM_TAG]
            wanted = (
                (PROMOTED, claimed)
                if other == holder
                else (KEPT, _overtaken(claimed, holder, alias))
            )
            if (tags.get(DECISION_TAG), tags.get(REASON_TAG)) != wanted:
                _tag_decision(client, name, other, found.run_id, *wanted, previous=previous)
            if other == version:
                mine = wanted
        if _alias_holder(client, name, alias) == holder:
            break
    return mine


def _record_digest(client: Any, name: str, version: str) -> None:
    """Tag the version with the SHA-256 of its files (``integrity.DIGEST_TAG``), once."""
    import tempfile

    import mlflow

    from keras_lakehouse.serving.integrity import DIGEST_TAG, folder_digest

    if client.get_model_version(name, version).tags.get(DIGEST_TAG):
        return
    with tempfile.TemporaryDirectory() as folder:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=folder)
        client.set_model_version_tag(name, version, DIGEST_TAG, folder_digest(folder))


def _version_of_run(client: Any, name: str, run_id: str) -> str | None:
    """The version of ``name`` already registered from ``run_id`` (a repeated evaluation).

    Unity Catalog's search takes a single condition, so the run is searched and the name filtered
    here.
    """
    versions = [
        int(found.version)
        for found in client.search_model_versions(f"run_id='{run_id}'")
        if found.name == name
    ]
    return str(min(versions)) if versions else None

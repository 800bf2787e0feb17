"""The model registry's quality gate: a hard floor, then ``champion`` only for a real improvement.

Aliases, not the deprecated stages. The decision is recorded where people look for it: tags on
the new model version and on its training run, a log line, and the registration report. The tags
are written before the alias moves (a rejected tag leaves the alias where it was), tag keys follow
Unity Catalog's rules (letters, digits and underscores), and the whole step is safe to repeat:
evaluating the same training run again reuses its model version instead of registering another.

Two evaluations promoting at once take turns: the alias is re-read, the decision tagged and the
alias moved under a lock in the registry (``promotion_lock``). The champion is measured outside
the lock; when the alias moved meanwhile, the new champion is measured in its turn, and in the
last round under the lock. So the better of two models ends as champion whatever the timing, and
every version's tags are written only by its own evaluation and never change afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from keras_lakehouse.serving.promotion_lock import promotion_lock

logger = logging.getLogger(__name__)

DECISION_TAG = "champion_decision"
REASON_TAG = "champion_reason"
PREVIOUS_TAG = "champion_previous"  # the version the decision was made against ("none")
DECISION_ROUNDS = 3  # measuring again when the alias moves while deciding; the last under the lock
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

    def decide(current: str | None) -> tuple[str, str, dict[str, Any]]:
        return _decide(version, current, metric, value, min_delta, champion_metric, alias)

    for round_number in range(1, DECISION_ROUNDS + 1):
        # Measured without the lock (scoring the champion can take minutes), except in the last
        # round, so that an alias that keeps moving cannot starve this evaluation.
        measured = None
        if round_number < DECISION_ROUNDS:
            measured_against = _alias_holder(client, name, alias)
            measured = decide(measured_against)
        with promotion_lock(client, name, holder=f"run {run_id} (v{version})"):
            current = _alias_holder(client, name, alias)
            if measured is not None and measured_against != current:
                logger.info(
                    "%s: %r moved while v%s was evaluated: deciding again.", name, alias, version
                )
                continue
            decision, reason, compared = measured or decide(current)
            report |= compared
            # Tags first: if the registry rejects one, the alias has not moved.
            _tag_decision(client, name, version, run_id, decision, reason, previous=current)
            if decision == PROMOTED:
                client.set_registered_model_alias(name, alias, version)
            break
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

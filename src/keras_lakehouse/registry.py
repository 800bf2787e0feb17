"""The model registry's quality gate: a hard floor, then ``champion`` only for a real improvement.

Aliases, not the deprecated stages. The decision is recorded where people look for it: tags on
the new model version and on its training run, a log line, and the registration report. The tags
are written before the alias moves (a rejected tag leaves the alias where it was), tag keys follow
Unity Catalog's rules (letters, digits and underscores), and the whole step is safe to repeat:
evaluating the same training run again reuses its model version instead of registering another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

DECISION_TAG = "champion_decision"
REASON_TAG = "champion_reason"
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
    from mlflow.exceptions import MlflowException

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
    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        current = None
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
    if current is None:
        decision, reason = PROMOTED, f"no version had the alias {alias!r}"
    elif str(current.version) == str(version):
        decision, reason = PROMOTED, f"v{version} already holds the alias {alias!r}"
        report["previous_champion"] = str(version)
    else:
        champion_value = float(champion_metric(str(current.version)))
        report |= {"previous_champion": str(current.version), "champion_value": champion_value}
        gain = value - champion_value
        if gain >= min_delta:
            decision = PROMOTED
            reason = (
                f"{metric} {value:.4f} beats champion v{current.version} ({champion_value:.4f}) "
                f"by {gain:+.4f} >= min_delta {min_delta}"
            )
        else:
            decision = KEPT
            reason = (
                f"{metric} {value:.4f} vs champion v{current.version} ({champion_value:.4f}): "
                f"{gain:+.4f} < min_delta {min_delta}; {alias!r} stays on v{current.version}"
            )
    # Tags first: if the registry rejects one, the alias has not moved.
    client.set_model_version_tag(name, version, DECISION_TAG, decision)
    client.set_model_version_tag(name, version, REASON_TAG, reason)
    client.set_tag(run_id, DECISION_TAG, decision)
    client.set_tag(run_id, REASON_TAG, reason)
    if decision == PROMOTED:
        client.set_registered_model_alias(name, alias, version)
    logger.info("%s v%s: %s (%s).", name, version, decision, reason)
    return report | {"decision": decision, "reason": reason}


def _record_digest(client: Any, name: str, version: str) -> None:
    """Tag the version with the SHA-256 of its files (``integrity.DIGEST_TAG``), once."""
    import tempfile

    import mlflow

    from keras_lakehouse.integrity import DIGEST_TAG, folder_digest

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

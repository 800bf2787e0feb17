"""The registry gate on a real (SQLite) MLflow registry: floor, first champion, min_delta."""

from __future__ import annotations

import mlflow
import pytest

from keras_lakehouse.serving.promotion_lock import lock_name
from keras_lakehouse.serving.registry import (
    DECISION_TAG,
    KEPT,
    PREVIOUS_TAG,
    PROMOTED,
    REASON_TAG,
    REJECTED,
    QualityFloorError,
    register_and_promote,
)


@pytest.fixture(scope="module")
def log_model(log_tiny_model):
    """Logs one small raw-input model in a new training run: returns its run id and model URI."""
    return lambda: log_tiny_model("registry-tests")


@pytest.fixture(scope="module")
def logged_model(log_model) -> tuple[str, str]:
    return log_model()


def promote(name: str, logged: tuple[str, str], value: float, champion: dict[str, float]):
    run_id, uri = logged
    asked: list[str] = []

    def champion_metric(version: str) -> float:
        asked.append(version)
        return champion[version]

    report = register_and_promote(
        name=name,
        model_uri=uri,
        run_id=run_id,
        metric="macro_f1",
        value=value,
        floor=0.8,
        min_delta=0.01,
        champion_metric=champion_metric,
    )
    return report, asked


def test_below_the_floor_fails_and_registers_nothing(logged_model) -> None:
    with pytest.raises(
        QualityFloorError, match=r"test macro_f1 0\.7000 is below the floor 0\.8000"
    ):
        promote("floor_model", logged_model, 0.7, {})
    client = mlflow.MlflowClient()
    assert client.search_registered_models(filter_string="name = 'floor_model'") == []
    assert client.get_run(logged_model[0]).data.tags[DECISION_TAG] == REJECTED


def test_champion_moves_only_when_beaten_by_min_delta(log_model) -> None:
    client = mlflow.MlflowClient()
    name = "gated_model"

    first, asked = promote(name, log_model(), 0.90, {})
    assert (first["version"], first["decision"], asked) == ("1", PROMOTED, [])
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # Better, but by less than min_delta: registered, alias stays, the reason is recorded.
    second, asked = promote(name, log_model(), 0.905, {"1": 0.90})
    assert (second["version"], second["decision"], asked) == ("2", KEPT, ["1"])
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    reason = client.get_model_version(name, "2").tags[REASON_TAG]
    assert "+0.0050 < min_delta 0.01" in reason
    assert "'champion' stays on v1" in reason

    # The champion is measured again (here: worse on today's test split), so v3 wins.
    third, asked = promote(name, log_model(), 0.91, {"1": 0.85})
    assert (third["version"], third["decision"], asked) == ("3", PROMOTED, ["1"])
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"
    assert third["champion_value"] == 0.85
    assert client.get_model_version(name, "3").tags[DECISION_TAG] == PROMOTED


def test_evaluating_the_same_run_again_registers_no_second_version(log_model) -> None:
    client = mlflow.MlflowClient()
    name = "repeated_model"
    logged = log_model()
    first, _ = promote(name, logged, 0.90, {})
    again, asked = promote(name, logged, 0.90, {})
    assert (first["version"], again["version"]) == ("1", "1")
    assert (again["decision"], asked) == (PROMOTED, [])  # no comparison with itself
    assert len(client.search_model_versions(f"name='{name}'")) == 1
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"


def test_a_rejected_tag_leaves_the_alias_where_it_was(log_model, monkeypatch) -> None:
    client = mlflow.MlflowClient()
    name = "tag_rejected_model"
    promote(name, log_model(), 0.90, {})

    set_tag = mlflow.MlflowClient.set_model_version_tag

    def reject(self, model, version, key, value):
        if key == DECISION_TAG:
            raise mlflow.exceptions.MlflowException("INVALID_PARAMETER_VALUE: tag rejected")
        return set_tag(self, model, version, key, value)

    monkeypatch.setattr(mlflow.MlflowClient, "set_model_version_tag", reject)
    with pytest.raises(mlflow.exceptions.MlflowException, match="tag rejected"):
        promote(name, log_model(), 0.99, {"1": 0.90})
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    # The promotion lock was released on the way out: the next evaluation is not kept waiting.
    assert client.search_registered_models(filter_string=f"name = '{lock_name(name)}'") == []


def test_tag_keys_follow_unity_catalog_rules() -> None:
    from keras_lakehouse.serving.uc_standin import check_tag_key

    for key in (DECISION_TAG, REASON_TAG, PREVIOUS_TAG):
        check_tag_key(key)

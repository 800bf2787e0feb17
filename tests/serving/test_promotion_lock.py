"""The promotion lock on a real (SQLite) MLflow registry: exclusive, released, broken when stale."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import mlflow
import pytest

from keras_lakehouse.serving.promotion_lock import (
    LEASE_S,
    PromotionLockTimeoutError,
    lock_name,
    promotion_lock,
)
from keras_lakehouse.serving.uc_standin import check_model_name


def lock_exists(client, model: str) -> bool:
    return bool(client.search_registered_models(filter_string=f"name = '{lock_name(model)}'"))


class Clock:
    """Real time plus what the recorded sleeps added (no test waits for real)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset, self.sleeps = offset, []

    def __call__(self) -> float:
        return time.time() + self.offset + sum(self.sleeps)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_a_held_lock_keeps_the_next_evaluation_out_and_names_its_holder() -> None:
    client, model = mlflow.MlflowClient(), "held_lock_model"
    clock = Clock()
    with promotion_lock(client, model, holder="run first (v2)"):
        assert lock_exists(client, model)
        with (
            pytest.raises(PromotionLockTimeoutError) as raised,
            promotion_lock(
                client, model, holder="run second (v3)", wait_s=5, clock=clock, sleep=clock.sleep
            ),
        ):
            pytest.fail("entered a lock held by another evaluation")
    message = str(raised.value)
    assert "held_lock_model" in message
    assert "run first (v2)" in message
    assert f"delete the registered model '{lock_name(model)}'" in message
    # It waited (backing off, at most 2 s between attempts) until its wait ran out.
    assert clock.sleeps[:3] == [0.05, 0.1, 0.2]
    assert max(clock.sleeps) == 2.0
    assert 5 <= sum(clock.sleeps) < 7
    assert not lock_exists(client, model)  # released by its holder, not by the one that gave up


def test_the_lock_is_released_when_the_block_fails() -> None:
    client, model = mlflow.MlflowClient(), "failing_lock_model"
    with (
        pytest.raises(RuntimeError, match="tag rejected"),
        promotion_lock(client, model, holder="run failing (v1)"),
    ):
        raise RuntimeError("tag rejected")
    assert not lock_exists(client, model)
    with promotion_lock(client, model, holder="run next (v2)", wait_s=0):
        assert lock_exists(client, model)


def test_a_lock_older_than_its_lease_is_broken_and_its_first_holder_does_not_free_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A killed evaluation leaves its lock; after the lease the next one breaks and takes it,
    and the first holder (if it was only slow) leaves the new holder's lock alone."""
    client, model = mlflow.MlflowClient(), "stale_lock_model"
    later = Clock(offset=LEASE_S + 1)
    with ExitStack() as first:
        first.enter_context(promotion_lock(client, model, holder="run killed (v1)"))
        with (
            caplog.at_level(logging.WARNING),
            promotion_lock(
                client, model, holder="run after (v2)", wait_s=0, clock=later, sleep=later.sleep
            ),
        ):
            assert later.sleeps == []  # broken at once, not waited for
            assert "run after (v2)" in client.get_registered_model(lock_name(model)).description
            first.close()  # the first holder finishes late
            assert lock_exists(client, model)
    assert "breaking the promotion lock stale_lock_model_promotion_lock" in caplog.text
    assert "run killed (v1)" in caplog.text
    assert not lock_exists(client, model)


def test_a_lock_released_while_its_creation_failed_is_taken_on_the_next_attempt(
    monkeypatch,
) -> None:
    """MLflow's SQL store words a refused creation by reading the existing model: when its
    holder deletes it in between, the error is "not found" and no lock exists any more."""
    client, model = mlflow.MlflowClient(), "vanishing_lock_model"
    create = mlflow.MlflowClient.create_registered_model
    failures = iter(
        [mlflow.exceptions.MlflowException(f"Registered Model with name={model} not found")]
    )

    def create_after_a_vanished_lock(self, *args, **kwargs):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return create(self, *args, **kwargs)

    monkeypatch.setattr(
        mlflow.MlflowClient, "create_registered_model", create_after_a_vanished_lock
    )
    with promotion_lock(client, model, holder="run next (v2)", wait_s=0):
        assert lock_exists(client, model)
    assert not lock_exists(client, model)


def test_a_lock_that_cannot_be_created_fails_with_the_registry_error(monkeypatch) -> None:
    client, model = mlflow.MlflowClient(), "forbidden_lock_model"

    def refuse(self, *args, **kwargs):
        raise mlflow.exceptions.MlflowException("PERMISSION_DENIED: no CREATE MODEL on the schema")

    monkeypatch.setattr(mlflow.MlflowClient, "create_registered_model", refuse)
    with (
        pytest.raises(mlflow.exceptions.MlflowException, match="PERMISSION_DENIED"),
        promotion_lock(client, model, holder="run denied (v1)", wait_s=0),
    ):
        pytest.fail("entered a lock that was never created")


def test_a_lock_name_is_a_unity_catalog_model_name_in_the_same_schema() -> None:
    name = lock_name("main.ml_models.keras_lakehouse_cnn")
    check_model_name(name)
    assert name.rsplit(".", 1)[0] == "main.ml_models"


def test_jittered_races_always_end_with_the_better_champion_and_final_tags(
    monkeypatch, race_two_evaluations
) -> None:
    """Twelve races of two evaluations that both measured v1, with random pauses around every
    registry call (before the lock, 8 of 60 such races left a report or tag that disagreed)."""
    import random

    from keras_lakehouse.serving import registry

    client = mlflow.MlflowClient()
    jitter = random.Random(7)
    for method in (
        "get_model_version_by_alias", "get_model_version", "set_model_version_tag", "set_tag",
        "set_registered_model_alias", "search_model_versions", "create_registered_model",
        "get_registered_model", "delete_registered_model",
    ):  # fmt: skip
        call = getattr(mlflow.MlflowClient, method)

        def paused(self, *args, _call=call, **kwargs):
            time.sleep(jitter.random() * 0.01)
            found = _call(self, *args, **kwargs)
            time.sleep(jitter.random() * 0.01)
            return found

        monkeypatch.setattr(mlflow.MlflowClient, method, paused)
    # Versions without model files: the race is about the registry, not what the versions hold.
    monkeypatch.setattr(registry, "_record_digest", lambda *args: None)

    def register(run_id: str, name: str):
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        return client.create_model_version(name, "file:///nowhere", run_id=run_id)

    monkeypatch.setattr(mlflow, "register_model", register)
    mlflow.set_experiment("jittered-races")

    def new_run() -> str:
        with mlflow.start_run() as run:
            return run.info.run_id

    for race in range(12):
        name = f"jittered_model_{race}"
        first = new_run()
        registry.register_and_promote(
            name=name, model_uri=first, run_id=first, metric="macro_f1", value=0.85, floor=0.8,
            min_delta=0.01, champion_metric=lambda version: 0.0,
        )  # fmt: skip
        runs = {0.90: new_run(), 0.95: new_run()}
        values = {first: 0.85} | {run_id: value for value, run_id in runs.items()}
        logged = {value: (run_id, run_id) for value, run_id in runs.items()}
        reports, errors = race_two_evaluations(name, logged, values)
        assert errors == [], f"race {race}"
        assert sorted(reports) == [0.90, 0.95], f"race {race}: an evaluation failed"
        champion = str(client.get_model_version_by_alias(name, "champion").version)
        assert champion == reports[0.95]["version"], f"race {race}"
        for value, report in reports.items():
            tags = client.get_model_version(name, report["version"]).tags
            run_tags = client.get_run(runs[value]).data.tags
            decided = (report["decision"], report["reason"])
            assert decided == (tags["champion_decision"], tags["champion_reason"]), f"race {race}"
            assert decided == (run_tags["champion_decision"], run_tags["champion_reason"])
        assert not lock_exists(client, name)

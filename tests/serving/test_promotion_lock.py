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


def test_a_lock_name_is_a_unity_catalog_model_name_in_the_same_schema() -> None:
    name = lock_name("main.ml_models.keras_lakehouse_cnn")
    check_model_name(name)
    assert name.rsplit(".", 1)[0] == "main.ml_models"

"""How `make test` spreads the suite over pytest-xdist workers (tests/conftest.py): each group runs
on one worker, so a module's or a shared fixture is built once, and the longest groups start
first."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def conftest(request: pytest.FixtureRequest):
    plugin = request.config.pluginmanager.get_plugin(str(PROJECT_ROOT / "tests" / "conftest.py"))
    assert plugin is not None, "tests/conftest.py is not registered under its path"
    return plugin


def test_every_longest_group_names_a_shared_fixture_or_a_test_module(conftest) -> None:
    for group in conftest.LONGEST_GROUPS:
        assert group in conftest.SHARED_FIXTURES or (PROJECT_ROOT / group).is_file(), (
            f"LONGEST_GROUPS names {group!r}: no shared fixture and no test module has that "
            "name (renamed?): its tests would no longer start first."
        )


def test_each_test_carries_one_group_its_module_or_its_shared_fixture(
    request: pytest.FixtureRequest, conftest
) -> None:
    items = request.session.items
    for item in items:
        groups = [mark.args[0] for mark in item.iter_markers("xdist_group")]
        shared = [name for name in conftest.SHARED_FIXTURES if name in item.fixturenames]
        expected = shared[0] if shared else item.nodeid.split("::", 1)[0]
        assert groups == [expected], item.nodeid
    assert request.node in items
    assert next(request.node.iter_markers("xdist_group")).args[0] == "tests/test_scheduling.py"


def test_the_longest_groups_come_first_and_xdist_keeps_the_order(
    request: pytest.FixtureRequest, conftest
) -> None:
    rank = {group: index for index, group in enumerate(conftest.LONGEST_GROUPS)}
    ranks = [
        rank.get(next(item.iter_markers("xdist_group")).args[0], len(rank))
        for item in request.session.items
    ]
    assert ranks == sorted(ranks)
    assert getattr(request.config.option, "loadscopereorder", False) is False


def test_every_user_of_the_spark_session_and_no_other_test_is_marked_spark(
    request: pytest.FixtureRequest,
) -> None:
    """`make check` runs `-m "not slow and not spark"`, the tests that start no JVM: the mark
    follows the `spark` fixture, requested directly or through another fixture."""
    marked = {item.nodeid for item in request.session.items if item.get_closest_marker("spark")}
    users = {item.nodeid for item in request.session.items if "spark" in item.fixturenames}
    assert marked == users
    assert request.node.nodeid not in marked


def test_the_suites_spark_jvms_compile_with_c1_only_and_one_gc_thread(spark) -> None:
    """conftest's SPARK_SUBMIT_OPTS reaches the driver JVM (and, inherited, the JVMs of the
    `kedro run` processes the suite starts)."""
    import os

    bean = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(bean.getInputArguments())
    assert "-XX:TieredStopAtLevel=1" in arguments, arguments
    assert "-XX:+UseSerialGC" in arguments, arguments
    assert "-XX:TieredStopAtLevel=1" in os.environ["SPARK_SUBMIT_OPTS"]

"""The run summary (keras_lakehouse.run_summary) from literal reports: the numbers, only the stages
that ran, reports that are missing; and the hook that reads them through a catalog."""

from __future__ import annotations

import logging
import logging.config
import os
from types import SimpleNamespace

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from keras_lakehouse.run_summary import NOT_PRODUCED, RunSummaryHooks, summary_lines
from keras_lakehouse.terminal import (
    MessageFilter,
    TerminalHooks,
    filter_terminal,
    keep_logging_configuration,
    release_logging_configuration,
)

IMAGES_COUNTS = {
    "raw": 908,
    "bronze": 903,
    "quarantine": 5,
    "quarantine_by_reason": {"empty_file": 1, "not_an_image": 1, "truncated": 3},
}
TEXTS_COUNTS = {"raw": 1235, "bronze": 1235, "quarantine": 0, "quarantine_by_reason": {}}
IMAGES_GATE = {
    "table": "images_bronze",
    "delta_version": 3,
    "passed": True,
    "failures": [],
    "warnings": ["expect_column_values_to_be_in_set"],
}
IMAGES_REPORT = {
    "table": "images_bronze",
    "checks": [{"status": "passed"}] * 12 + [{"status": "failed"}],
}
CNN_EVALUATION = {"accuracy": 0.98507, "macro_f1": 0.98541, "support": 134, "loss": 0.04}
LSTM_TRAINING = {"test_loss": 0.02, "test_accuracy": 0.99456}
CNN_REGISTRATION = {
    "registered_model": "keras_lakehouse_cnn",
    "version": "3",
    "decision": "kept",
    "reason": "macro_f1 0.9854 vs champion v1 (1.0000): -0.0146 < min_delta 0.005",
}
FILES = {
    "images_ingestion_counts": "data/08_reporting/images_ingestion_counts.json",
    "images_bronze_quality_page": "data/08_reporting/data_quality/images_bronze.html",
    "cnn_evaluation_plots": "data/08_reporting/evaluation/cnn",
}


def test_every_stage_with_its_numbers() -> None:
    lines = summary_lines(
        {
            "images_ingestion_counts": IMAGES_COUNTS,
            "texts_ingestion_counts": TEXTS_COUNTS,
            "images_bronze_quality_gate": IMAGES_GATE,
            "images_bronze_quality_report": IMAGES_REPORT,
            "cnn_evaluation": CNN_EVALUATION,
            "lstm_training_metrics": LSTM_TRAINING,
            "cnn_registration": CNN_REGISTRATION,
        },
        files=FILES,
        log_file="data/08_reporting/kedro_run.log",
    )

    assert lines == [
        "Run summary",
        "  Ingestion     images: 908 new -> 903 bronze, 5 quarantined "
        "(empty_file 1, not_an_image 1, truncated 3)",
        "                texts: 1235 new -> 1235 bronze, 0 quarantined",
        "  Data quality  images_bronze: passed, warnings: expect_column_values_to_be_in_set "
        "(12/13 checks passed, Delta version 3)",
        "  Test metrics  cnn: accuracy 0.9851, macro-F1 0.9854 on 134 test rows",
        "                lstm: accuracy 0.9946 on the test split "
        "(macro-F1: run the evaluation pipeline)",
        "  Registry      cnn: keras_lakehouse_cnn v3 kept: macro_f1 0.9854 vs champion v1 "
        "(1.0000): -0.0146 < min_delta 0.005",
        "  Reports       data/08_reporting/",
        "                open: data_quality/images_bronze.html, evaluation/cnn/",
        "  Full log      data/08_reporting/kedro_run.log",
    ]


def test_only_the_stages_that_ran_appear() -> None:
    lines = summary_lines({"images_ingestion_counts": IMAGES_COUNTS})

    assert lines[0] == "Run summary"
    assert lines[1].startswith("  Ingestion     images: 908 new -> 903 bronze")
    assert len(lines) == 2  # no texts, no quality, metrics, registry, reports or log lines


def test_a_run_with_no_new_file_says_so() -> None:
    empty = {"raw": 0, "bronze": 0, "quarantine": 0, "quarantine_by_reason": {}}
    lines = summary_lines({"images_ingestion_counts": empty})

    assert lines[1] == (
        "  Ingestion     images: nothing new (every delivered file was ingested by an earlier run)"
    )


def test_a_failed_verdict_counts_its_failures() -> None:
    gate = IMAGES_GATE | {"passed": False, "failures": ["a", "b"], "warnings": []}

    (_, line) = summary_lines({"images_bronze_quality_gate": gate})

    assert line == "  Data quality  images_bronze: FAILED (2 check(s)) (Delta version 3)"


def test_a_quality_report_without_its_verdict_shows_its_checks() -> None:
    (_, line) = summary_lines(
        {"images_bronze_quality_report": IMAGES_REPORT | {"delta_version": 2}}
    )

    assert line == "  Data quality  images_bronze: 12/13 checks passed, Delta version 2"


def test_missing_and_unreadable_reports_are_named_not_fatal() -> None:
    lines = summary_lines(
        {
            "images_ingestion_counts": None,
            "texts_ingestion_counts": {"bronze": 3},
            "texts_bronze_quality_gate": None,
            "lstm_evaluation": None,
            "lstm_registration": "not a mapping",
        }
    )

    assert lines[1:] == [
        f"  Ingestion     images: {NOT_PRODUCED}",
        "                texts: unreadable report (KeyError: 'raw')",
        f"  Data quality  texts_bronze: {NOT_PRODUCED}",
        f"  Test metrics  lstm: {NOT_PRODUCED}",
        "  Registry      lstm: unreadable report (TypeError: string indices must be integers, "
        "not 'str')",
    ]


def test_inference_counts_are_listed_as_they_come() -> None:
    lines = summary_lines(
        {"inference_summary": {"images": {"scored": 23, "quarantine_by_reason": {"truncated": 1}}}}
    )

    assert lines[1:] == ["  Inference     images: scored 23, quarantine_by_reason (truncated 1)"]


def test_monitoring_counts_statuses_and_names_what_warned() -> None:
    verdict = {
        "run_id": "abc",
        "statuses": {"ok": 25, "warn": 1, "not_judged": 1},
        "warned": ["keras_lakehouse_cnn v2 format js_distance 0.412 (threshold 0.35)"],
        "failed": [],
    }
    lines = summary_lines({"monitoring_verdict": verdict})

    assert lines[1:] == [
        "  Monitoring    25 ok, 1 warn, 1 not_judged (MLflow run abc)",
        "                warn: keras_lakehouse_cnn v2 format js_distance 0.412 (threshold 0.35)",
    ]


def _pipeline(*outputs: str) -> Pipeline:
    return Pipeline([Node(lambda: [1] * len(outputs), inputs=None, outputs=list(outputs))])


def test_the_hook_reads_the_reports_the_pipeline_wrote_through_the_catalog(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    hooks = RunSummaryHooks()
    context = SimpleNamespace(
        project_path=tmp_path,
        config_loader={
            "catalog": {
                "images_ingestion_counts": {"filepath": str(tmp_path / "reports/images.json")},
                "cnn_registration": {"filepath": "reports/evaluation/cnn_registration.json"},
            }
        },
    )
    hooks.after_context_created(context)
    catalog = DataCatalog(
        {
            "images_ingestion_counts": MemoryDataset(IMAGES_COUNTS),
            "cnn_registration": MemoryDataset(CNN_REGISTRATION),  # not an output: not shown
        }
    )
    pipeline = _pipeline("images_ingestion_counts", "texts_ingestion_counts")

    with caplog.at_level(logging.INFO, logger="keras_lakehouse.run_summary"):
        hooks.after_pipeline_run({}, {}, pipeline, catalog)

    (record,) = [r for r in caplog.records if r.name == "keras_lakehouse.run_summary"]
    assert record.levelno == logging.INFO
    lines = record.getMessage().splitlines()
    assert lines[:3] == [
        "Run summary",
        "  Ingestion     images: 908 new -> 903 bronze, 5 quarantined "
        "(empty_file 1, not_an_image 1, truncated 3)",
        f"                texts: {NOT_PRODUCED}",  # an output the catalog cannot load
    ]
    assert "  Reports       reports/" in lines
    assert not any("Registry" in line for line in lines)


def test_a_broken_summary_is_a_warning_not_a_failed_run(caplog: pytest.LogCaptureFixture) -> None:
    broken = SimpleNamespace(all_outputs=lambda: 1 / 0)

    with caplog.at_level(logging.INFO, logger="keras_lakehouse.run_summary"):
        RunSummaryHooks().after_pipeline_run({}, {}, broken, DataCatalog())

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "No run summary (ZeroDivisionError: division by zero).")
    ]


def test_mlflow_alembic_ini_cannot_reconfigure_logging_while_a_pipeline_runs(tmp_path) -> None:
    ini = tmp_path / "mlflow" / "store" / "db_migrations" / "alembic.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
        "[logger_root]\nlevel = WARN\nhandlers = console\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nformatter = generic\n"
        "[formatter_generic]\nformat = %(message)s\n"
    )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    original = logging.config.fileConfig
    try:
        keep_logging_configuration()
        keep_logging_configuration()  # idempotent
        logging.config.fileConfig(str(ini), disable_existing_loggers=False)
        assert (root.handlers, root.level) == (handlers, level)

        release_logging_configuration()
        assert logging.config.fileConfig is original
    finally:
        logging.config.fileConfig = original


def test_message_filter_drops_only_matching_records() -> None:
    drop = MessageFilter(r"^Completed node: ")

    def record(message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("kedro.runner", logging.INFO, __file__, 1, message, args, None)

    assert not drop.filter(record("Completed node: %s", "image.train_cnn"))
    assert drop.filter(record("Completed %d out of %d tasks", 1, 4))


def test_message_filter_by_source_drops_the_records_of_matching_files() -> None:
    drop = MessageFilter(r"[/\\]mlflow[/\\]store[/\\]db_migrations[/\\]", source=True)
    migration = logging.LogRecord(
        "89d4b8295536_create_latest_metrics_table_py",
        logging.INFO,
        "/venv/site-packages/mlflow/store/db_migrations/versions/89d4b8295536.py",
        1,
        "Migration complete!",
        (),
        None,
    )

    assert not drop.filter(migration)
    assert drop.filter(logging.LogRecord("x", logging.INFO, __file__, 1, "kept", (), None))


def test_filter_terminal_filters_the_terminal_handler_only_and_once() -> None:
    terminal, other = logging.NullHandler(), logging.NullHandler()
    terminal.set_name("terminal")
    root = logging.getLogger()
    root.addHandler(terminal)
    root.addHandler(other)
    try:
        filter_terminal(r"^Completed node: ")
        filter_terminal(r"^Completed node: ")
    finally:
        root.removeHandler(terminal)
        root.removeHandler(other)

    assert [f.pattern.pattern for f in terminal.filters] == [r"^Completed node: "]
    assert other.filters == []


def test_terminal_hooks_undo_their_changes_after_the_run(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_CONFIGURE_LOGGING", raising=False)
    original = logging.config.fileConfig
    hooks = TerminalHooks()

    hooks.before_pipeline_run({}, Pipeline([]), DataCatalog())
    assert os.environ["MLFLOW_CONFIGURE_LOGGING"] == "false"
    assert logging.config.fileConfig is not original
    hooks.after_pipeline_run()

    assert "MLFLOW_CONFIGURE_LOGGING" not in os.environ
    assert logging.config.fileConfig is original


def test_an_explicit_mlflow_logging_setting_is_left_alone(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "true")
    hooks = TerminalHooks()

    hooks.before_pipeline_run({}, Pipeline([]), DataCatalog())
    hooks.on_pipeline_error()

    assert os.environ["MLFLOW_CONFIGURE_LOGGING"] == "true"

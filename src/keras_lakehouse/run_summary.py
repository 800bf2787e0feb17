"""What a ``kedro run`` shows on the terminal: a short summary at the end of a successful run.

The summary reads the JSON reports the run wrote, through the catalog: rows ingested and
quarantined by reason, the data-quality verdicts, the test metrics and the registry decision of
each model, and where the reports and the full log are. Only the stages the run's pipeline ran
appear (``--pipelines=ingestion`` shows ingestion only); a report that cannot be read is named,
never fatal. It is logged (``keras_lakehouse.run_summary``), so it also lands in the log file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

# The report datasets of conf/base/catalog.yml, by stage.
INGESTION_COUNTS = {"images": "images_ingestion_counts", "texts": "texts_ingestion_counts"}
QUALITY_TABLES = ("images_bronze", "texts_bronze")  # <table>_quality_gate, _quality_report
MODELS = ("cnn", "lstm")  # <model>_training_metrics, _evaluation, _registration
INFERENCE_SUMMARY = "inference_summary"
MONITORING_VERDICT = "monitoring_verdict"
REPORT_DATASETS = (
    *INGESTION_COUNTS.values(),
    *(f"{table}_quality_{kind}" for table in QUALITY_TABLES for kind in ("gate", "report")),
    *(f"{model}_{kind}" for model in MODELS for kind in ("training_metrics", "evaluation")),
    *(f"{model}_registration" for model in MODELS),
    INFERENCE_SUMMARY,
    MONITORING_VERDICT,
)
# What a person opens, listed by path: the data-quality pages, the evaluation plots and notes.
PAGE_DATASETS = (
    *(f"{table}_quality_page" for table in QUALITY_TABLES),
    *(f"{model}_evaluation_plots" for model in MODELS),
    "lstm_confidently_wrong",
    "monitoring_report",
)
NOT_PRODUCED = "not produced by this run"
LABEL_WIDTH = 14


def summary_lines(
    reports: Mapping[str, Any],
    *,
    files: Mapping[str, str] | None = None,
    log_file: str | None = None,
) -> list[str]:
    """The summary block, one string per line.

    Args:
        reports: Report dataset name → its content, for each report the run's pipeline
            outputs; ``None`` when it could not be read. Stages with no report here are left out.
        files: Dataset name → file or folder path, for the reports and pages the run wrote.
        log_file: Where the full log of the run is.

    Returns:
        The lines: a title, one labelled section per stage that ran, the reports' folder and
        the log file. Just the title and the log file when the run wrote no report.
    """
    sections: list[tuple[str, list[str]]] = [
        ("Ingestion", _ingestion(reports)),
        ("Data quality", _quality(reports)),
        ("Test metrics", _metrics(reports)),
        ("Registry", _registry(reports)),
        ("Inference", _inference(reports)),
        ("Monitoring", _monitoring(reports)),
        ("Reports", _reports_folder(files or {})),
        ("Full log", [log_file] if log_file else []),
    ]
    lines = ["Run summary"]
    for label, entries in sections:
        for index, entry in enumerate(entries):
            lines.append(f"  {label if index == 0 else '':<{LABEL_WIDTH}}{entry}")
    return lines


def _entry(report: Any, describe: Callable[[Any], str]) -> str:
    """``describe(report)``, or why there is nothing to describe."""
    if report is None:
        return NOT_PRODUCED
    try:
        return describe(report)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return f"unreadable report ({type(error).__name__}: {error})"


def _ingestion(reports: Mapping[str, Any]) -> list[str]:
    def describe(counts: Mapping[str, Any]) -> str:
        if counts["raw"] == 0:
            return "nothing new (every delivered file was ingested by an earlier run)"
        text = (
            f"{counts['raw']} new -> {counts['bronze']} bronze, {counts['quarantine']} quarantined"
        )
        reasons = _pairs(counts.get("quarantine_by_reason") or {})
        return f"{text} ({reasons})" if reasons else text

    return [
        f"{modality}: {_entry(reports[name], describe)}"
        for modality, name in INGESTION_COUNTS.items()
        if name in reports
    ]


def _quality(reports: Mapping[str, Any]) -> list[str]:
    lines = []
    for table in QUALITY_TABLES:
        gate_name, report_name = f"{table}_quality_gate", f"{table}_quality_report"
        if gate_name not in reports and report_name not in reports:
            continue
        gate, report = reports.get(gate_name), reports.get(report_name)
        if gate is None and report is None:
            lines.append(f"{table}: {NOT_PRODUCED}")
            continue
        lines.append(f"{table}: {_entry((gate, report), _verdict)}")
    return lines


def _verdict(gate_and_report: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]) -> str:
    """``passed (13/13 checks passed, Delta version 0)``; ``FAILED (2 check(s))``, warnings."""
    gate, report = gate_and_report
    details = []
    if report is not None:
        checks = report["checks"]
        passed = sum(check["status"] == "passed" for check in checks)
        details.append(f"{passed}/{len(checks)} checks passed")
    version = (gate or {}).get("delta_version", (report or {}).get("delta_version"))
    if version is not None:
        details.append(f"Delta version {version}")
    if gate is None:
        return ", ".join(details)
    verdict = "passed" if gate["passed"] else f"FAILED ({len(gate.get('failures') or [])} check(s))"
    if gate.get("warnings"):
        verdict += f", warnings: {', '.join(map(str, gate['warnings']))}"
    return f"{verdict} ({', '.join(details)})" if details else verdict


def _metrics(reports: Mapping[str, Any]) -> list[str]:
    lines = []
    for model in MODELS:
        evaluation, training = f"{model}_evaluation", f"{model}_training_metrics"
        if evaluation in reports:
            lines.append(f"{model}: {_entry(reports[evaluation], _evaluation)}")
        elif training in reports:
            lines.append(f"{model}: {_entry(reports[training], _training)}")
    return lines


def _evaluation(report: Mapping[str, Any]) -> str:
    rows = f" on {report['support']} test rows" if "support" in report else ""
    return f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}{rows}"


def _training(metrics: Mapping[str, Any]) -> str:
    return (
        f"accuracy {metrics['test_accuracy']:.4f} on the test split "
        "(macro-F1: run the evaluation pipeline)"
    )


def _registry(reports: Mapping[str, Any]) -> list[str]:
    def describe(decision: Mapping[str, Any]) -> str:
        return (
            f"{decision['registered_model']} v{decision['version']} {decision['decision']}: "
            f"{decision['reason']}"
        )

    return [
        f"{model}: {_entry(reports[name], describe)}"
        for model in MODELS
        if (name := f"{model}_registration") in reports
    ]


def _inference(reports: Mapping[str, Any]) -> list[str]:
    if INFERENCE_SUMMARY not in reports:
        return []
    summary = reports[INFERENCE_SUMMARY]
    if not isinstance(summary, Mapping):
        return [_entry(summary, str)]
    return [f"{modality}: {_pairs(counts)}" for modality, counts in summary.items()]


def _monitoring(reports: Mapping[str, Any]) -> list[str]:
    """The count of each status, then each value that warned (a failure fails the run)."""
    if MONITORING_VERDICT not in reports:
        return []
    verdict = reports[MONITORING_VERDICT]
    if not isinstance(verdict, Mapping):
        return [_entry(verdict, str)]
    statuses = ", ".join(f"{count} {status}" for status, count in verdict["statuses"].items())
    return [
        f"{statuses} (MLflow run {verdict['run_id']})",
        *(f"warn: {w}" for w in verdict["warned"]),
    ]


def _pairs(values: Any) -> str:
    """``a 1, b 2`` for a mapping (nested ones in parentheses), else the value as text."""
    if not isinstance(values, Mapping):
        return str(values)
    return ", ".join(
        f"{key} ({_pairs(value)})" if isinstance(value, Mapping) else f"{key} {value}"
        for key, value in values.items()
    )


def _reports_folder(files: Mapping[str, str]) -> list[str]:
    """The folder holding every report, then the pages to open, relative to it."""
    if not files:
        return []
    folders = [os.path.dirname(path) or "." for path in files.values()]
    try:
        root = os.path.commonpath(folders)
    except ValueError:  # absolute and relative paths, or paths on different drives
        return sorted(set(folders))
    pages = [
        os.path.relpath(files[name], root) + ("/" if name.endswith("_plots") else "")
        for name in PAGE_DATASETS
        if name in files
    ]
    return [f"{root}/", *([f"open: {', '.join(pages)}"] if pages else [])]


class RunSummaryHooks:
    """Log the summary (``summary_lines``) after a successful pipeline run."""

    def __init__(self) -> None:
        self._filepaths: dict[str, str] = {}
        self._project_path: Path | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Keep the project path and the reports' file paths (from the catalog's config)."""
        self._project_path = Path(context.project_path)
        try:
            catalog = context.config_loader["catalog"]
        except Exception:  # no catalog, or one that fails later with its own error
            catalog = {}
        self._filepaths = {
            name: str(entry["filepath"])
            for name, entry in catalog.items()
            if name in (*REPORT_DATASETS, *PAGE_DATASETS)
            and isinstance(entry, Mapping)
            and entry.get("filepath")
        }

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any
    ) -> None:
        """Read the reports the pipeline wrote and log the summary; never fails the run."""
        try:
            produced = pipeline.all_outputs()
            reports = {name: _load(catalog, name) for name in REPORT_DATASETS if name in produced}
            files = {  # what the run wrote: a report that could not be read is not listed
                name: self._shown(path)
                for name, path in self._filepaths.items()
                if name in produced and (name not in reports or reports[name] is not None)
            }
            lines = summary_lines(reports, files=files, log_file=self._log_file())
        except Exception as error:  # the run succeeded: a summary's bug must not fail it
            logger.warning("No run summary (%s: %s).", type(error).__name__, error)
            logger.debug("The run summary failed.", exc_info=True)
            return
        logger.info("\n".join(lines))

    def _shown(self, path: str) -> str:
        """``path`` relative to the project when it is inside it, else as it is."""
        if self._project_path is None or "://" in path:
            return path
        absolute = Path(path) if Path(path).is_absolute() else self._project_path / path
        try:
            return str(absolute.resolve().relative_to(self._project_path.resolve()))
        except ValueError:
            return path

    def _log_file(self) -> str | None:
        """The first log file of the root logger's handlers (conf/logging.yml's ``file``)."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                return self._shown(handler.baseFilename)
        return None


def _load(catalog: Any, name: str) -> Any:
    """The dataset's content, or ``None`` (logged at DEBUG) when it cannot be loaded."""
    try:
        return catalog.load(name)
    except Exception as error:  # a missing or unreadable report is shown as such
        logger.debug("Run summary: %s could not be loaded: %s", name, error)
        return None

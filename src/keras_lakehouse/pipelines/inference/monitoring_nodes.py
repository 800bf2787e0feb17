"""Monitoring nodes: after each scoring run, profile what was scored, measure drift against the
training profile of the version that scored it, measure live quality where labels arrived, write
``monitoring_profiles`` / ``monitoring_drift`` and the report — then fail the run if a ``fail``
threshold was crossed (after everything is written, like the data-quality gate).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame

from keras_lakehouse.ingest.spark_checks import require_columns
from keras_lakehouse.monitoring.drift import (
    FAIL,
    WARN,
    drift_rows,
    quality_rows,
    quarantine_row,
    verdict,
)
from keras_lakehouse.monitoring.features import (
    CONFIDENCE_EDGES,
    IMAGE_FEATURES,
    OUTPUT_FEATURES,
    TEXT_FEATURES,
    image_features,
    output_features,
    text_features,
)
from keras_lakehouse.monitoring.profiles import (
    histograms_of,
    profile_document,
    profile_frame,
    profile_rows,
)
from keras_lakehouse.monitoring.tables import DRIFT_SCHEMA, PROFILE_SCHEMA, with_run
from keras_lakehouse.monitoring.training_profile import (
    VOCABULARY_ARTIFACT,
    load_run_artifact,
    scored_version,
    training_profile_of,
)
from keras_lakehouse.params import (
    ImageIngestionParams,
    InferenceParams,
    MonitoringParams,
    ServingParams,
)

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("kind", "key", "label")


def monitor_images(
    images: DataFrame,
    predictions: DataFrame,
    counts: dict[str, Any],
    ingestion: ImageIngestionParams,
    serving: ServingParams,
    inference: InferenceParams,
    monitoring: MonitoringParams,
) -> dict[str, Any]:
    """Profile the scored images and their predictions; drift against the training profile.

    Args:
        images: The images scored in this run (``key``, ``path``, ``content``).
        predictions: Their prediction rows.
        counts: ``check_images_to_score``'s counts (for the quarantine rate).
        ingestion: ``ingestion.images`` (pixel cap).
        serving: ``serving`` (the alias, when no row names the version).
        inference: ``inference`` (which registered model scores images).
        monitoring: ``monitoring`` thresholds.

    Returns:
        The scored version, its training profile, this run's profile and the drift rows.
    """
    model = scored_version(predictions, inference.image_model, serving.alias)
    training = training_profile_of(model)
    reference = histograms_of(training) if training else None
    features = image_features(images, "content", ingestion.max_pixels)
    histograms = profile_frame(features, IMAGE_FEATURES, reference=reference)
    return _monitored(
        "image", model, training, reference, histograms, predictions, counts, monitoring
    )


def monitor_texts(
    texts: DataFrame,
    predictions: DataFrame,
    counts: dict[str, Any],
    serving: ServingParams,
    inference: InferenceParams,
    monitoring: MonitoringParams,
) -> dict[str, Any]:
    """As ``monitor_images``, for the scored texts (``id``, ``text``, ...); the out-of-vocabulary
    rate uses the vocabulary logged with the version that scored them."""
    model = scored_version(predictions, inference.text_model, serving.alias)
    training = training_profile_of(model)
    reference = histograms_of(training) if training else None
    vocabulary = load_run_artifact(model["run_id"], VOCABULARY_ARTIFACT)
    if vocabulary is None:
        logger.warning("%s v%s: no %s artifact.", model["name"], model["version"], "vocabulary")
        vocabulary = ["", "[UNK]"]
    features = text_features(texts, "text", vocabulary)
    histograms = profile_frame(features, TEXT_FEATURES, reference=reference)
    return _monitored(
        "text", model, training, reference, histograms, predictions, counts, monitoring
    )


def measure_live_quality(
    predictions: DataFrame, labels: pd.DataFrame | None, monitoring: MonitoringParams
) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 per model version over every prediction whose true label arrived.

    Args:
        predictions: The ``predictions`` table (all runs).
        labels: ``monitoring_labels`` (``kind,key,label``); ``None`` before any arrived.
        monitoring: ``monitoring`` thresholds.

    Raises:
        ValueError: When the labels lack one of ``kind``, ``key``, ``label``.
    """
    truth = None
    if labels is not None:
        require_columns(labels, LABEL_COLUMNS, "monitoring_labels")
        rows = labels[list(LABEL_COLUMNS)].astype(str).itertuples(index=False, name=None)
        truth = _spark().createDataFrame(list(rows), "kind string, key string, label string")
    rows = quality_rows(predictions, truth, monitoring)
    for row in rows:
        logger.info(
            "%s v%s live %s %.4f over %d labelled predictions (%s)",
            row["model_name"],
            row["model_version"],
            row["statistic"],
            row["value"],
            row["labelled_rows"],
            row["status"],
        )
    return rows


def record_monitoring(
    image_monitoring: dict[str, Any],
    text_monitoring: dict[str, Any],
    live_quality: list[dict[str, Any]],
    earlier_drift: DataFrame,
) -> tuple[DataFrame, DataFrame, dict[str, Any], str, dict[str, Any]]:
    """Both tables' rows, the report (figures and HTML, logged to MLflow too) and the verdict.

    Args:
        image_monitoring, text_monitoring: The outputs of ``monitor_images`` / ``monitor_texts``.
        live_quality: The output of ``measure_live_quality``.
        earlier_drift: ``monitoring_drift`` before this run (the quality's history; empty at first).

    Returns:
        ``monitoring_profiles`` rows, ``monitoring_drift`` rows, the figures by file name, the
        HTML page and the verdict (statuses and the rows that warn or fail).
    """
    from keras_lakehouse.monitoring.report import (
        drift_figure,
        quality_figure,
        report_html,
    )
    from keras_lakehouse.monitoring.tables import log_report

    computed_at = datetime.now(UTC)
    monitored = (image_monitoring, text_monitoring)
    drift = [
        {**row, "modality": part["modality"], **_model_columns(part["model"])}
        for part in monitored
        for row in part["drift"]
    ] + live_quality
    history = _quality_history(earlier_drift)
    history += [row | {"computed_at": computed_at} for row in live_quality]
    figures = {
        f"{part['modality']}_drift.png": drift_figure(
            f"{part['model']['name']} v{part['model']['version']} — training vs. this run",
            histograms_of(part["training_profile"]) if part["training_profile"] else None,
            histograms_of(part["profile"]),
            part["drift"],
        )
        for part in monitored
    }
    figures["quality.png"] = quality_figure(history)
    page = report_html("Keras Lakehouse — monitoring", figures, drift)
    run_id = log_report(figures, page, drift)
    profile_rows_ = [
        row
        for part in monitored
        for document in (part["profile"], part["training_profile"])
        if document
        for row in profile_rows(
            {**document, "model": part["model"]}, _profile_run(part, document, run_id)
        )
    ]
    spark = _spark()
    profiles = spark.createDataFrame(
        with_run(profile_rows_, run_id, computed_at, PROFILE_SCHEMA), PROFILE_SCHEMA
    )
    drift_frame = spark.createDataFrame(
        with_run(drift, run_id, computed_at, DRIFT_SCHEMA), DRIFT_SCHEMA
    )
    return profiles, drift_frame, figures, page, verdict(run_id, drift)


def check_monitoring(verdict: dict[str, Any]) -> None:
    """Fail the run when a value crossed its ``fail`` threshold (the report is already written).

    Raises:
        RuntimeError: Naming each failing measurement.
    """
    if verdict["failed"]:
        raise RuntimeError(
            f"Monitoring failed (report: 08_reporting/monitoring/report.html, MLflow run "
            f"{verdict['run_id']}): " + "; ".join(verdict["failed"])
        )


def _monitored(
    modality: str,
    model: dict[str, Any],
    training: dict[str, Any] | None,
    reference: dict[str, Any] | None,
    histograms: dict[str, Any],
    predictions: DataFrame,
    counts: Mapping[str, Any],
    monitoring: MonitoringParams,
) -> dict[str, Any]:
    histograms |= profile_frame(
        output_features(predictions),
        OUTPUT_FEATURES,
        reference=reference,
        fixed_edges={"confidence": CONFIDENCE_EDGES},
    )
    rows = [*drift_rows(reference, histograms, monitoring), quarantine_row(counts, monitoring)]
    profile = profile_document(
        scope="inference",
        modality=modality,
        model=model,
        source={"counts": dict(counts)},
        rows=int(counts.get("accepted") or 0),
        histograms=histograms,
    )
    for row in rows:
        if row["status"] in (WARN, FAIL):
            logger.warning(
                "%s v%s %s: %s %.3f is at or above its %s threshold (%s).",
                model["name"],
                model["version"],
                row["metric"],
                row["statistic"],
                row["value"],
                row["status"],
                row[row["status"]],
            )
    return {
        "modality": modality,
        "model": model,
        "training_profile": training,
        "profile": profile,
        "drift": rows,
    }


def _model_columns(model: Mapping[str, Any]) -> dict[str, str]:
    return {"model_name": str(model["name"]), "model_version": str(model["version"])}


def _profile_run(part: Mapping[str, Any], document: Mapping[str, Any], run_id: str) -> str:
    """Training profile rows are keyed by the training run (the same rows each scoring run)."""
    return part["model"]["run_id"] if document["scope"] == "training" else run_id


def _quality_history(earlier: DataFrame) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F  # noqa: N812

    # Spark returns timestamps as naive local datetimes: make them aware, as this run's is.
    return [
        row.asDict() | {"computed_at": row["computed_at"].astimezone(UTC)}
        for row in earlier.filter(F.col("statistic").isin("accuracy", "macro_f1"))
        .select("computed_at", "model_name", "model_version", "statistic", "value")
        .collect()  # two rows per version and scoring run
    ]


def _spark() -> Any:
    from keras_lakehouse.platform.spark import active_session

    return active_session("Monitoring")

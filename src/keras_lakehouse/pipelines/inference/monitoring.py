"""Monitoring, the second half of ``kedro run --pipelines=inference``: after scoring.

Its inputs are the scoring run's own DataFrames (what was accepted and how it was scored), so it
is not a pipeline of its own; ``pipeline.create_pipeline`` adds it to the scoring nodes.
"""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.inference.monitoring_nodes import (
    check_monitoring,
    measure_live_quality,
    monitor_images,
    monitor_texts,
    record_monitoring,
)


def monitoring_pipeline() -> Pipeline:
    """Profile and drift per modality, live quality, then the tables, the report and the gate."""
    return Pipeline(
        [
            Node(
                monitor_images,
                inputs=[
                    "images_to_score",
                    "image_predictions",
                    "images_to_score_counts",
                    "params:ingestion.images",
                    "params:serving",
                    "params:inference",
                    "params:monitoring",
                ],
                outputs="image_monitoring",
                name="monitor_images",
                namespace="image",
                tags=["mlflow"],
            ),
            Node(
                monitor_texts,
                inputs=[
                    "texts_to_score",
                    "text_predictions",
                    "texts_to_score_counts",
                    "params:serving",
                    "params:inference",
                    "params:monitoring",
                ],
                outputs="text_monitoring",
                name="monitor_texts",
                namespace="text",
                tags=["mlflow"],
            ),
            Node(
                measure_live_quality,
                inputs=["predictions", "monitoring_labels", "params:monitoring"],
                outputs="live_quality",
                name="measure_live_quality",
            ),
            Node(
                record_monitoring,
                inputs=[
                    "image_monitoring",
                    "text_monitoring",
                    "live_quality",
                    "monitoring_drift_known",
                ],
                outputs=[
                    "monitoring_profiles",
                    "monitoring_drift",
                    "monitoring_figures",
                    "monitoring_report",
                    "monitoring_verdict",
                ],
                name="record_monitoring",
                tags=["mlflow"],
            ),
            Node(
                check_monitoring,
                inputs="monitoring_verdict",
                outputs=None,
                name="check_monitoring",
            ),
        ]
    )

"""Data quality: a Great Expectations gate on each bronze table."""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.data_quality.nodes import (
    enforce_quality_gate,
    record_quality_verdict,
    validate_table,
)

MODALITY_TABLES = {"image": "images_bronze", "text": "texts_bronze"}


def create_pipeline(**kwargs) -> Pipeline:
    """One validate → gate pair per modality namespace (``image``, ``text``)."""
    return sum(
        (_gate(namespace, table) for namespace, table in MODALITY_TABLES.items()), Pipeline([])
    )


def _gate(namespace: str, table: str) -> Pipeline:
    return Pipeline(
        [
            Node(
                validate_table,
                inputs=[
                    table,
                    f"params:{table}_suite",
                    table.replace("_bronze", "_ingestion_counts"),
                    f"{table}_quality_report_known",
                ],
                outputs=[f"{table}_quality_report", f"{table}_quality_page"],
                name=f"validate_{table}",
            ),
            Node(
                record_quality_verdict,
                inputs=f"{table}_quality_report",
                outputs=f"{table}_quality_gate",
                name=f"record_{table}_verdict",
            ),
            Node(
                enforce_quality_gate,
                inputs=f"{table}_quality_gate",
                outputs=None,
                name=f"gate_{table}",
            ),
        ],
        namespace=namespace,
        prefix_datasets_with_namespace=False,
    )

"""Ingestion: new raw image and text files → bronze and quarantine Delta tables."""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.ingestion.nodes import (
    check_raw_images,
    check_raw_texts,
    route_images,
    route_texts,
    settle_files,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Two modality namespaces (``image``, ``text``) over unprefixed dataset names."""
    image = Pipeline(
        [
            Node(
                check_raw_images,
                inputs=["raw_images", "images_bronze_known", "params:ingestion.images"],
                outputs=["images_checked", "images_batch"],
                name="check_raw_images",
            ),
            Node(
                route_images,
                inputs=["images_checked", "params:images_bronze_suite"],
                outputs=["images_bronze", "images_quarantine", "images_ingestion_counts"],
                name="upsert_images_bronze",
            ),
            Node(
                settle_files,
                inputs=["images_batch", "images_ingestion_counts"],
                outputs="raw_images_settled",
                name="settle_raw_images",
            ),
        ],
        namespace="image",
        prefix_datasets_with_namespace=False,
    )
    text = Pipeline(
        [
            Node(
                check_raw_texts,
                inputs=["raw_texts", "texts_bronze_known", "params:ingestion.texts"],
                outputs=["texts_checked", "texts_batch"],
                name="check_raw_texts",
            ),
            Node(
                route_texts,
                inputs=["texts_checked", "params:texts_bronze_suite"],
                outputs=["texts_bronze", "texts_quarantine", "texts_ingestion_counts"],
                name="upsert_texts_bronze",
            ),
            Node(
                settle_files,
                inputs=["texts_batch", "texts_ingestion_counts"],
                outputs="raw_texts_settled",
                name="settle_raw_texts",
            ),
        ],
        namespace="text",
        prefix_datasets_with_namespace=False,
    )
    return image + text

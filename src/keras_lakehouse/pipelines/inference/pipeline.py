"""Inference: score new raw images and texts with the champion models, then monitor the run
(``monitoring``); not in the default run."""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.inference.monitoring import monitoring_pipeline
from keras_lakehouse.pipelines.inference.nodes import (
    check_images_to_score,
    check_texts_to_score,
    collect_predictions,
    score_images,
    score_texts,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Check → score per modality, one MERGE into ``predictions``, then monitoring."""
    scoring = Pipeline(
        [
            Node(
                check_images_to_score,
                inputs=["raw_inference_images", "params:ingestion.images"],
                outputs=[
                    "images_to_score",
                    "inference_images_quarantine",
                    "images_to_score_counts",
                ],
                name="check_images_to_score",
                namespace="image",
            ),
            Node(
                score_images,
                inputs=["images_to_score", "params:serving", "params:inference"],
                outputs="image_predictions",
                name="score_images",
                namespace="image",
                tags=["mlflow"],
            ),
            Node(
                check_texts_to_score,
                inputs=["raw_inference_texts", "params:ingestion.texts"],
                outputs=["texts_to_score", "inference_texts_quarantine", "texts_to_score_counts"],
                name="check_texts_to_score",
                namespace="text",
            ),
            Node(
                score_texts,
                inputs=["texts_to_score", "params:serving", "params:inference"],
                outputs="text_predictions",
                name="score_texts",
                namespace="text",
                tags=["mlflow"],
            ),
            Node(
                collect_predictions,
                inputs=[
                    "image_predictions",
                    "text_predictions",
                    "images_to_score_counts",
                    "texts_to_score_counts",
                ],
                outputs=["predictions", "inference_summary"],
                name="collect_predictions",
            ),
        ]
    )
    return scoring + monitoring_pipeline()

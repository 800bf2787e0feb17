"""Preprocessing: bronze → silver model input, with splits and train-only fitting.

Silver grows by MERGE: each branch reads silver as the last run left it (``*_known``) and writes
only the rows it lacks or holds stale.
"""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.preprocessing.nodes import (
    decode_images,
    fit_vocabulary,
    pass_gated_table,
    split_images,
    split_texts,
    vectorize_texts,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Image and text branches, each behind its data-quality gate."""
    image = Pipeline(
        [
            Node(
                pass_gated_table,
                inputs=["images_bronze_validated", "images_bronze_quality_gate"],
                outputs="images_bronze_gated",
                name="wait_for_images_gate",
            ),
            Node(
                split_images,
                inputs=[
                    "images_bronze_gated",
                    "params:preprocessing.seed",
                    "params:preprocessing.split",
                    "params:preprocessing.image_labels",
                ],
                outputs=["images_split", "image_label_map"],
                name="split_images",
            ),
            Node(
                decode_images,
                inputs=["images_split", "images_silver_known", "params:preprocessing.images"],
                outputs="images_silver@spark",
                name="decode_images",
            ),
        ],
        namespace="image",
        prefix_datasets_with_namespace=False,
    )
    text = Pipeline(
        [
            Node(
                pass_gated_table,
                inputs=["texts_bronze_validated", "texts_bronze_quality_gate"],
                outputs="texts_bronze_gated",
                name="wait_for_texts_gate",
            ),
            Node(
                split_texts,
                inputs=[
                    "texts_bronze_gated",
                    "params:preprocessing.seed",
                    "params:preprocessing.split",
                    "params:preprocessing.text_labels",
                ],
                outputs=["texts_split", "text_label_map"],
                name="split_texts",
            ),
            Node(
                fit_vocabulary,
                inputs=["texts_split", "vocabulary_saved", "params:preprocessing.texts"],
                outputs="vocabulary",
                name="fit_vocabulary",
            ),
            Node(
                vectorize_texts,
                inputs=[
                    "texts_split",
                    "texts_silver_known",
                    "vocabulary",
                    "params:preprocessing.texts",
                ],
                outputs="texts_silver@spark",
                name="vectorize_texts",
            ),
        ],
        namespace="text",
        prefix_datasets_with_namespace=False,
    )
    return image + text

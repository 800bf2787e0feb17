"""Evaluation: metrics and pictures per model, then the registry's quality gate."""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.evaluation.nodes import (
    evaluate_cnn,
    evaluate_lstm,
    register_cnn,
    register_lstm,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Per modality: evaluate the trained model, then register it behind the floor."""
    image = Pipeline(
        [
            Node(
                evaluate_cnn,
                inputs=[
                    "cnn_model",
                    "images_silver@snapshot",
                    "image_label_map",
                    "cnn_training_metrics",
                    "params:evaluation",
                    "params:preprocessing.images.image_size",
                ],
                outputs=["cnn_evaluation", "cnn_evaluation_plots"],
                name="evaluate_cnn",
                tags=["mlflow"],
            ),
            Node(
                register_cnn,
                inputs=[
                    "cnn_evaluation",
                    "cnn_training_metrics",
                    "images_silver@spark",
                    "images_bronze",
                    "params:evaluation",
                    "params:serving",
                ],
                outputs="cnn_registration",
                name="register_cnn",
                tags=["mlflow"],
            ),
        ],
        namespace="image",
        prefix_datasets_with_namespace=False,
    )
    text = Pipeline(
        [
            Node(
                evaluate_lstm,
                inputs=[
                    "lstm_model",
                    "texts_silver@snapshot",
                    "text_label_map",
                    "lstm_training_metrics",
                    "params:evaluation",
                    "params:preprocessing.texts.sequence_length",
                ],
                outputs=["lstm_evaluation", "lstm_evaluation_plots", "lstm_confidently_wrong"],
                name="evaluate_lstm",
                tags=["mlflow"],
            ),
            Node(
                register_lstm,
                inputs=[
                    "lstm_evaluation",
                    "lstm_training_metrics",
                    "texts_silver@spark",
                    "params:evaluation",
                    "params:serving",
                ],
                outputs="lstm_registration",
                name="register_lstm",
                tags=["mlflow"],
            ),
        ],
        namespace="text",
        prefix_datasets_with_namespace=False,
    )
    return image + text

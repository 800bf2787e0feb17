"""Training: a CNN on images_silver and a stacked LSTM on texts_silver."""

from kedro.pipeline import Node, Pipeline

from keras_lakehouse.pipelines.training.monitoring_nodes import (
    profile_cnn_training,
    profile_lstm_training,
)
from keras_lakehouse.pipelines.training.nodes import train_cnn, train_lstm


def create_pipeline(**kwargs) -> Pipeline:
    """One training node per modality namespace."""
    image = Pipeline(
        [
            Node(
                train_cnn,
                inputs=[
                    "images_silver@snapshot",
                    "image_label_map",
                    "params:training",
                    "params:preprocessing.images",
                ],
                outputs=["cnn_model", "cnn_training_metrics"],
                name="train_cnn",
                tags=["mlflow"],
            ),
            Node(
                profile_cnn_training,
                inputs=[
                    "cnn_model",
                    "images_silver@snapshot",
                    "images_bronze",
                    "image_label_map",
                    "cnn_training_metrics",
                    "params:ingestion.images",
                    "params:preprocessing.images.image_size",
                ],
                outputs="cnn_training_profile",
                name="profile_cnn_training",
                tags=["mlflow"],
            ),
        ],
        namespace="image",
        prefix_datasets_with_namespace=False,
    )
    text = Pipeline(
        [
            Node(
                train_lstm,
                inputs=[
                    "texts_silver@snapshot",
                    "text_label_map",
                    "vocabulary",
                    "params:training",
                    "params:preprocessing.texts.sequence_length",
                ],
                outputs=["lstm_model", "lstm_training_metrics"],
                name="train_lstm",
                tags=["mlflow"],
            ),
            Node(
                profile_lstm_training,
                inputs=[
                    "lstm_model",
                    "texts_silver@snapshot",
                    "text_label_map",
                    "vocabulary",
                    "lstm_training_metrics",
                    "params:preprocessing.texts.sequence_length",
                ],
                outputs="lstm_training_profile",
                name="profile_lstm_training",
                tags=["mlflow"],
            ),
        ],
        namespace="text",
        prefix_datasets_with_namespace=False,
    )
    return image + text

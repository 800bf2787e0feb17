"""Training: a CNN on images_silver and a stacked LSTM on texts_silver."""

from kedro.pipeline import Node, Pipeline

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
            )
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
            )
        ],
        namespace="text",
        prefix_datasets_with_namespace=False,
    )
    return image + text

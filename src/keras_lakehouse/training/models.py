"""Model builders (Keras 3, backend-agnostic): the source article's CNN and stacked LSTM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers


def build_cnn(
    *,
    image_size: int,
    num_classes: int,
    filters: Sequence[int] = (32, 64, 128),
    dense_units: int = 64,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> keras.Model:
    """Conv2D/MaxPooling blocks, then Dense and a softmax over the classes.

    The model takes raw ``uint8`` RGB pixels (``image_size`` × ``image_size`` × 3) and rescales
    them itself (the article's ``rescale=1/255``), so serving feeds what training stored.
    """
    if image_size < 2 ** len(filters):
        raise ValueError(
            f"image_size must be at least 2**{len(filters)}={2 ** len(filters)} for "
            f"{len(filters)} pooling blocks. Received: image_size={image_size}"
        )
    inputs = keras.Input((image_size, image_size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for count in filters:
        x = layers.Conv2D(count, 3, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    # float32 output keeps the softmax stable under mixed precision.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_lstm(
    *,
    vocabulary_size: int,
    sequence_length: int,
    num_classes: int,
    embedding_dim: int = 32,
    units: int = 32,
    dropout: float = 0.2,
) -> keras.Model:
    """Embedding (masking padding) → LSTM → Dropout → LSTM → Dropout → softmax.

    The LSTMs keep their default activations, no recurrent dropout and no unrolling, so Keras
    uses the cuDNN kernel on a GPU. (The article's ``Dense(1)`` head with a sparse categorical
    loss was a bug: the head has one unit per class.)
    """
    inputs = keras.Input((sequence_length,), dtype="int32", name="token_ids")
    x = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True)(inputs)
    x = layers.LSTM(units, return_sequences=True)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.LSTM(units)(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="lstm")


def build_augmentation(
    *, shear: float, zoom: float, horizontal_flip: bool, seed: int
) -> keras.Sequential | None:
    """The article's ImageDataGenerator (shear 0.2, zoom 0.2, horizontal flip) as Keras layers.

    Returns ``None`` when every transform is switched off. Applied to training batches only.
    """
    steps: list[Any] = []
    if shear:
        steps.append(RandomShear(shear, seed=seed))
    if zoom:
        steps.append(layers.RandomZoom(zoom, seed=seed + 1))
    if horizontal_flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed + 2))
    return keras.Sequential(steps, name="augmentation") if steps else None


class RandomShear(layers.Layer):
    """Random shear along x and y by up to ``factor`` (ImageDataGenerator's ``shear_range``).

    Our own layer: Keras' ``RandomShear`` arrived after 3.5, the Keras of the target Databricks
    runtime (runtime/databricks-runtime.toml). Each image gets its own shear about its centre;
    pixels sheared in from outside repeat the nearest edge. Identity when not training. Used on
    training batches only, never saved in a model.
    """

    def __init__(self, factor: float, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= factor < 1:
            raise ValueError(f"factor must be in [0, 1). Received: factor={factor}")
        self.factor = factor
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool = True) -> Any:
        if not training or not self.factor:
            return images
        ops = keras.ops
        shape = ops.shape(images)
        shear = keras.random.uniform(
            (shape[0], 2), -self.factor, self.factor, seed=self.seed_generator
        )
        x_shear, y_shear = shear[:, 0], shear[:, 1]
        centre_y = (ops.cast(shape[1], "float32") - 1) / 2
        centre_x = (ops.cast(shape[2], "float32") - 1) / 2
        ones, zeros = ops.ones_like(x_shear), ops.zeros_like(x_shear)
        # Output pixel (x, y) reads input (x + sx·(y − cy), y + sy·(x − cx)).
        transform = ops.stack(
            [ones, x_shear, -x_shear * centre_y, y_shear, ones, -y_shear * centre_x, zeros, zeros],
            axis=1,
        )
        return ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode="nearest"
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def compile_model(model: keras.Model, *, optimizer: str, learning_rate: float) -> keras.Model:
    """Sparse categorical cross-entropy and accuracy, with adam or sgd."""
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}. Received: {optimizer!r}")
    model.compile(
        optimizer=optimizers[optimizer](learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model

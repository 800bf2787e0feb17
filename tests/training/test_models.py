"""Model builders: shapes, raw-input contracts, argument checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_lakehouse.training.models import build_augmentation, build_cnn, build_lstm, compile_model


def test_cnn_takes_raw_uint8_pixels_and_gives_class_probabilities() -> None:
    model = build_cnn(image_size=32, num_classes=3, filters=(8, 16), dense_units=8)
    assert model.input.dtype == "uint8"
    assert model.input.shape == (None, 32, 32, 3)
    probs = model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0)
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    conv = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert conv == [8, 16]
    assert isinstance(model.layers[1], keras.layers.Rescaling)


def test_cnn_batch_norm_is_optional() -> None:
    def norms(model: keras.Model) -> int:
        return sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)

    assert norms(build_cnn(image_size=16, num_classes=2, filters=(4, 4), batch_norm=True)) == 2
    assert norms(build_cnn(image_size=16, num_classes=2, filters=(4, 4), batch_norm=False)) == 0


def test_cnn_refuses_an_image_too_small_for_its_pooling() -> None:
    with pytest.raises(ValueError, match=r"at least 2\*\*3=8 .* Received: image_size=4"):
        build_cnn(image_size=4, num_classes=2)


def test_lstm_is_stacked_masks_padding_and_keeps_cudnn_arguments() -> None:
    model = build_lstm(vocabulary_size=50, sequence_length=7, num_classes=3, units=32)
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.return_sequences for layer in lstms] == [True, False]
    for layer in lstms:
        assert layer.cell.activation.__name__ == "tanh"
        assert layer.cell.recurrent_activation.__name__ == "sigmoid"
        assert layer.cell.recurrent_dropout == 0
        assert layer.unroll is False
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.2, 0.2]
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    assert embedding.mask_zero is True
    assert model.output.shape == (None, 3)


def test_one_training_step_lowers_the_loss() -> None:
    keras.utils.set_random_seed(0)
    model = compile_model(
        build_lstm(vocabulary_size=20, sequence_length=5, num_classes=2),
        optimizer="adam",
        learning_rate=0.05,
    )
    x = np.array([[2, 3, 0, 0, 0], [4, 5, 0, 0, 0]] * 8, dtype=np.int32)
    y = np.array([0, 1] * 8, dtype=np.int32)
    before = model.evaluate(x, y, verbose=0)[0]
    model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_unknown_optimizer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Received: 'rmsprop'"):
        compile_model(
            build_lstm(vocabulary_size=5, sequence_length=2, num_classes=2),
            optimizer="rmsprop",
            learning_rate=0.1,
        )


def test_augmentation_layers_follow_the_switches() -> None:
    layers = build_augmentation(shear=0.2, zoom=0.2, horizontal_flip=True, seed=1)
    assert [type(layer).__name__ for layer in layers.layers] == [
        "RandomShear",
        "RandomZoom",
        "RandomFlip",
    ]
    assert build_augmentation(shear=0, zoom=0, horizontal_flip=False, seed=1) is None
    flips = build_augmentation(shear=0, zoom=0, horizontal_flip=True, seed=1)
    assert [type(layer).__name__ for layer in flips.layers] == ["RandomFlip"]


def test_shear_moves_pixels_only_when_training_and_keeps_the_centre() -> None:
    from keras_lakehouse.training.models import RandomShear

    image = np.zeros((1, 9, 9, 3), dtype="float32")
    image[0, :, 4, :] = 255.0  # a vertical line through the centre
    layer = RandomShear(0.5, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(image, training=False)), image)
    sheared = np.asarray(layer(np.repeat(image, 8, axis=0), training=True))
    assert sheared.shape == (8, 9, 9, 3)
    assert not np.allclose(sheared, image)  # the line leans
    np.testing.assert_allclose(sheared[:, 4, 4, :], 255.0, atol=1e-3)  # the centre stays
    with pytest.raises(ValueError, match="factor must be in"):
        RandomShear(1.5)

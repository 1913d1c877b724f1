"""keras-io examples/vision/mnist_convnet.py

The simple MNIST convnet (two Conv2D/MaxPooling2D blocks, Flatten, Dropout, softmax),
Adam and categorical cross-entropy, trained with ``validation_split=0.1`` and then
evaluated; once in float32 and once under the ``mixed_float16`` policy (as the Keras
mixed-precision guide trains on GPUs). Corpus copy: 12x12 random images, 4 classes,
tiny filters, and the Dropout rate set to 0.0 (replicas draw independent masks).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers

num_classes = 4
input_shape = (12, 12, 1)


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(4, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(6, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.0),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def _digits(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random((rows, *input_shape)).astype("float32"),
            keras.utils.to_categorical(rng.integers(0, num_classes, size=rows), num_classes))


X_TRAIN, Y_TRAIN = _digits(10, seed=0)
X_TEST, Y_TEST = _digits(1, seed=1)


def _example(policy: str) -> Example:
    return Example(
        build=build,
        compile_args=lambda: {"loss": "categorical_crossentropy", "optimizer": "adam",
                              "metrics": ["accuracy"]},
        steps=fit_steps(X_TRAIN, Y_TRAIN, batch_size=3, epochs=2, validation_split=0.1,
                        evaluate=(X_TEST, Y_TEST)),
        policy=policy,
    )


FLOAT32 = _example("float32")
MIXED_FLOAT16 = _example("mixed_float16")


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(FLOAT32, devices)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device_in_mixed_precision(devices: int) -> None:
    # Under mixed_float16 each replica's forward and backward pass computes in float16
    # on its own rows: its weight gradients are float16 sums over its sub-batch, each
    # rounded to float16 (unit roundoff 2**-11, about 4.9e-4) before the replicas'
    # parts are added, where one device rounds one sum over the whole batch. Results
    # therefore agree to a few float16 roundings, not to float32's.
    assert_trains_like_one_device(MIXED_FLOAT16, devices, rtol=2e-3, atol=1e-4)

"""keras-io examples/vision/siamese_contrastive.py

A Siamese network: one embedding tower (a nested functional model) applied to both
images of a pair, a ``Lambda`` layer for their Euclidean distance, and the example's
contrastive loss (a closure over ``margin`` returning one mean over the batch),
compiled with RMSprop and accuracy; trained with validation data, then evaluated and
used for prediction. Corpus copy: 16x16 random image pairs, tiny layers, and the three
BatchNormalization layers frozen (a replica would normalize with its sub-batch's
statistics, a documented difference).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import (
    DEVICES,
    Example,
    assert_trains_like_one_device,
    fit_steps,
    freeze_batch_normalization,
)
from keras import layers, ops

IMAGE_SHAPE = (16, 16, 1)
margin = 1


def euclidean_distance(vects):
    x, y = vects
    sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
    return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))


def loss(margin=1):
    def contrastive_loss(y_true, y_pred):
        square_pred = ops.square(y_pred)
        margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
        return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)

    return contrastive_loss


def build() -> keras.Model:
    input = layers.Input(IMAGE_SHAPE)
    x = layers.BatchNormalization()(input)
    x = layers.Conv2D(2, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(3, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(4, activation="tanh")(x)
    embedding_network = keras.Model(input, x)

    input_1 = layers.Input(IMAGE_SHAPE)
    input_2 = layers.Input(IMAGE_SHAPE)
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = layers.Lambda(euclidean_distance)([tower_1, tower_2])
    normal_layer = layers.BatchNormalization()(merge_layer)
    output_layer = layers.Dense(1, activation="sigmoid")(normal_layer)
    siamese = keras.Model(inputs=[input_1, input_2], outputs=output_layer)
    return freeze_batch_normalization(siamese)


def _pairs(rows: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = [rng.random((rows, *IMAGE_SHAPE)).astype("float32") for _ in range(2)]
    return pairs, rng.integers(0, 2, size=rows).astype("float32")


PAIRS_TRAIN, LABELS_TRAIN = _pairs(8, seed=0)
PAIRS_VAL, LABELS_VAL = _pairs(4, seed=1)
PAIRS_TEST, LABELS_TEST = _pairs(4, seed=2)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"loss": loss(margin=margin), "optimizer": "RMSprop",
                          "metrics": ["accuracy"]},
    steps=fit_steps(PAIRS_TRAIN, LABELS_TRAIN, batch_size=4, epochs=2,
                    validation_data=(PAIRS_VAL, LABELS_VAL),
                    evaluate=(PAIRS_TEST, LABELS_TEST), predict=PAIRS_TEST),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

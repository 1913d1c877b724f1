"""keras-io examples/timeseries/timeseries_classification_transformer.py

Transformer encoder blocks (multi-head attention, LayerNormalization, Conv1D
projections, residual connections) classify univariate timeseries; Adam(1e-4),
sparse categorical cross-entropy, ``validation_split=0.2`` and an ``EarlyStopping``
callback that restores the best weights; then the test set is evaluated. Corpus copy:
length-8 random series, one small block, and the attention, block and MLP dropout
rates set to 0.0 (replicas draw independent masks).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers

n_classes = 2
input_shape = (8, 1)


def transformer_encoder(inputs, head_size, num_heads, ff_dim, dropout=0):
    # Attention and Normalization
    x = layers.MultiHeadAttention(key_dim=head_size, num_heads=num_heads,
                                  dropout=dropout)(inputs, inputs)
    x = layers.Dropout(dropout)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    res = x + inputs

    # Feed Forward Part
    x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    return x + res


def build_model(input_shape, head_size, num_heads, ff_dim, num_transformer_blocks,
                mlp_units, dropout=0, mlp_dropout=0):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(num_transformer_blocks):
        x = transformer_encoder(x, head_size, num_heads, ff_dim, dropout)

    x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
    for dim in mlp_units:
        x = layers.Dense(dim, activation="relu")(x)
        x = layers.Dropout(mlp_dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def build() -> keras.Model:
    return build_model(input_shape, head_size=4, num_heads=2, ff_dim=2,
                       num_transformer_blocks=1, mlp_units=[4], mlp_dropout=0.0,
                       dropout=0.0)


def _series(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, *input_shape)), rng.integers(0, n_classes, size=rows)


X_TRAIN, Y_TRAIN = _series(15, seed=0)
X_TEST, Y_TEST = _series(3, seed=1)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"loss": "sparse_categorical_crossentropy",
                          "optimizer": keras.optimizers.Adam(learning_rate=1e-4),
                          "metrics": ["sparse_categorical_accuracy"]},
    steps=fit_steps(
        X_TRAIN, Y_TRAIN, validation_split=0.2, epochs=2, batch_size=4,
        callbacks=lambda: [keras.callbacks.EarlyStopping(patience=10,
                                                         restore_best_weights=True)],
        evaluate=(X_TEST, Y_TEST)),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

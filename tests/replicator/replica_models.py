"""Small models and data shared by the replicator tests (8 emulated GPUs: see
tests/conftest.py)."""

from __future__ import annotations

import keras
import numpy as np


def make_mlp(seed: int = 0, inputs: int = 16, outputs: int = 4) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = keras.Input((inputs,), name="features")
    h = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    y = keras.layers.Dense(outputs, name="scores")(h)
    return keras.Model(x, y, name="mlp")


def make_convnet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu")(x)
    h = keras.layers.GlobalAveragePooling2D()(h)
    y = keras.layers.Dense(5, activation="softmax")(h)
    return keras.Model(x, y, name="convnet")


def random_data(rows: int, inputs: int = 16, outputs: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, inputs)).astype("float32"),
            rng.normal(size=(rows, outputs)).astype("float32"))


def assert_same_training(histories, templates, rtol=1e-5, atol=1e-6):
    """The replicated run (second) logged and learned what the one-device run (first)
    did: every history entry and every weight of its template."""
    plain, replicated = histories
    assert set(replicated) == set(plain)
    for name in plain:
        np.testing.assert_allclose(replicated[name], plain[name], rtol=rtol, atol=atol,
                                   err_msg=name)
    for got, want in zip(templates[1].get_weights(), templates[0].get_weights()):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)

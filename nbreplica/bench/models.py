"""Built-in small models with synthetic data, so a sweep runs anywhere (CLI, tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

NUM_CLASSES = 10


@dataclass(frozen=True)
class BuiltinModel:
    """A named model builder and the shape of the synthetic examples it trains on."""

    name: str
    input_shape: tuple[int, ...]
    build: Callable[[tuple[int, ...]], keras.Model]

    def model_fn(self) -> keras.Model:
        """A freshly built and compiled model (a ``model_fn`` for ``sweep``)."""
        model = self.build(self.input_shape)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    def data(self, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``samples`` random examples and class labels (float32 inputs, int32 labels)."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((samples, *self.input_shape), dtype=np.float32)
        y = rng.integers(0, NUM_CLASSES, size=samples, dtype=np.int32)
        return x, y


def _mlp(input_shape: tuple[int, ...]) -> keras.Model:
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ], name="mlp")


def _cnn(input_shape: tuple[int, ...]) -> keras.Model:
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(NUM_CLASSES),
    ], name="cnn")


BUILTIN_MODELS = {
    "mlp": BuiltinModel("mlp", (256,), _mlp),
    "cnn": BuiltinModel("cnn", (32, 32, 3), _cnn),
}

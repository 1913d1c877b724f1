"""keras-io guides/custom_train_step_in_tensorflow.py ("Customizing what happens in fit()")

The guide's ``CustomModel``: its ``train_step`` from "Supporting sample_weight &
class_weight" (the compiled loss through ``self.compute_loss``, ``self.optimizer.apply``,
every metric of ``self.metrics`` updated by hand, sample weights unpacked from the
data) and its ``test_step`` from "Providing your own evaluation step", in one class;
compiled with Adam, MSE and MAE, trained with sample weights and evaluated. Corpus
copy: 6 features instead of 32, a few rows.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps


class CustomModel(keras.Model):
    def train_step(self, data):
        if len(data) == 3:
            x, y, sample_weight = data
        else:
            sample_weight = None
            x, y = data

        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)  # Forward pass
            loss = self.compute_loss(
                y=y,
                y_pred=y_pred,
                sample_weight=sample_weight,
            )

        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)

        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def build() -> keras.Model:
    inputs = keras.Input(shape=(6,))
    outputs = keras.layers.Dense(1)(inputs)
    return CustomModel(inputs, outputs)


_rng = np.random.default_rng(0)
X = _rng.random((8, 6))
Y = _rng.random((8, 1))
SW = _rng.random((8, 1))

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
    steps=fit_steps(X, Y, sample_weight=SW, batch_size=4, epochs=2, evaluate=(X, Y)),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

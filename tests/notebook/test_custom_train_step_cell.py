"""A ``%%replicate`` cell trains a model with its own ``train_step`` exactly as one
device does (8 emulated GPUs: see tests/conftest.py)."""

from __future__ import annotations

import numpy as np
from IPython.utils.capture import capture_output

import nbreplica

SETUP = """
import keras, numpy as np, tensorflow as tf

class Counted(keras.Model):
    "Its own train_step, loss tracker and step counter; compiled with an optimizer only."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tracker = keras.metrics.Mean(name="loss")
        self.steps = keras.Variable(0, trainable=False)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.steps.assign_add(1)
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]

def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = Counted(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model

rng = np.random.default_rng(0)
x = rng.standard_normal((40, 6), dtype=np.float32)
y = rng.standard_normal((40, 2), dtype=np.float32)
plain = build()
plain_history = plain.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
model = build()
"""


def test_a_cell_trains_a_model_with_its_own_train_step_like_one_device(shell):
    shell.reset(new_session=False)
    assert shell.run_cell(SETUP).success
    with capture_output() as captured:
        result = shell.run_cell(
            "%%replicate -n 4 --quiet\n"
            "history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)")
    assert result.success, captured.stdout
    ns = shell.user_ns
    assert isinstance(ns["history"].model, nbreplica.ReplicatedModel)
    np.testing.assert_allclose(ns["history"].history["loss"], ns["plain_history"]["loss"],
                               rtol=1e-5)
    assert int(ns["model"].steps.value) == int(ns["plain"].steps.value) == 8
    for got, want in zip(ns["model"].get_weights(), ns["plain"].get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

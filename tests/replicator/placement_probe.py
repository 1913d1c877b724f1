"""Trains a replicated MLP one step with TensorFlow's placement log on.

Run as a script (the log must be switched on before TensorFlow starts):
``python placement_probe.py DEVICES [MODE]``. ``MODE`` is ``stock`` (default: a
functional template trained by Keras's stock ``train_step``), ``custom`` (a template
with its own ``train_step``), ``submodels`` (a VAE-style ``train_step`` that never calls
``self``, only the encoder and decoder models it holds) or ``naive`` (a replicator that only places the forward
pass, whose backward pass is known to collapse onto one device).
"""

import os
import sys

os.environ["NBREPLICA_EMULATE_GPUS"] = sys.argv[1]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"

import tensorflow as tf  # noqa: E402

tf.debugging.set_log_device_placement(True)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402


class OwnStep(keras.Model):
    """A template with its own ``train_step`` (the Keras guide's pattern)."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


class EncoderDecoder(keras.Model):
    """A VAE-style template: its step calls its encoder and decoder, never ``self``."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def call(self, x):
        return self.decoder(self.encoder(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self.decoder(self.encoder(x)) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


def dense_model(inputs, units):
    x = keras.Input((inputs,))
    return keras.Model(x, keras.layers.Dense(units, activation="relu")(x))


class NaiveReplicas(keras.Model):
    """Places each replica's forward pass only, under Keras's stock ``train_step``."""

    def __init__(self, template, devices):
        super().__init__()
        self.template, self.devices = template, devices

    def call(self, x):
        parts = []
        for i, (device, shard) in enumerate(zip(self.devices, tf.split(x, len(self.devices)))):
            with tf.device(device), tf.name_scope(f"replica_{i}"):
                parts.append(self.template(shard))
        return tf.concat(parts, 0)


devices = int(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "stock"
x_in = keras.Input((16,))
hidden = keras.layers.Dense(32, activation="relu")(x_in)
template = (OwnStep if mode == "custom" else keras.Model)(x_in, keras.layers.Dense(4)(hidden))
if mode == "submodels":
    template = EncoderDecoder(dense_model(16, 32), dense_model(32, 4))
    template.build((None, 16))
if mode == "naive":
    model = NaiveReplicas(template, nbreplica.replicate(template, gpus=devices).devices)
else:
    model = nbreplica.replicate(template, gpus=devices)
model.compile(optimizer="sgd", loss="mse")
model.fit(np.ones((32, 16), "float32"), np.ones((32, 4), "float32"), batch_size=32, verbose=0)

"""keras-io examples/generative/vae.py

A convolutional variational autoencoder: a ``VAE`` model with no ``call`` whose own
``train_step`` calls its sub-models ``self.encoder`` and ``self.decoder``, tracks three
losses, and is compiled with an optimizer only. The encoder ends in the example's
``Sampling`` layer, kept as it is: it draws its noise with ``keras.random.normal`` from
its own ``SeedGenerator``. Corpus copy: 8x8 random images, tiny layers; the template is
built with ``vae.build(input_shape)`` (it has no ``call`` to build it on data).

The noise cannot be kept equal on both sides: the example has no switch for it, and
once the encoder's call is split, each replica draws noise for its own rows, taking the
next seed from the shared ``SeedGenerator`` (independent draws per replica are a
documented difference), so the rows get other draws than on one device. Only what no
draw reaches is compared: the metrics one ``fit`` step on the whole batch reports, and
its ``kl_loss``, which comes from ``z_mean`` and ``z_log_var`` of the initial weights.
The reconstruction loss, the total loss and the trained weights depend on the draw
and are left out (``compare_weights=False``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import DEVICES, Example, Session, assert_trains_like_one_device
from keras import layers, ops

LATENT_DIM = 2
IMAGE_SIZE = 8


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(
                    keras.losses.binary_crossentropy(data, reconstruction),
                    axis=(1, 2),
                )
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build() -> keras.Model:
    encoder_inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
    x = layers.Conv2D(4, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(4, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(8, activation="relu")(x)
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT_DIM, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(LATENT_DIM,))
    x = layers.Dense(2 * 2 * 4, activation="relu")(latent_inputs)
    x = layers.Reshape((2, 2, 4))(x)
    x = layers.Conv2DTranspose(4, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(4, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    vae = VAE(encoder, decoder)
    vae.build((None, IMAGE_SIZE, IMAGE_SIZE, 1))
    return vae


DIGITS = np.random.default_rng(0).random((8, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")


def steps(session: Session) -> dict[str, object]:
    history = session.model.fit(DIGITS, epochs=1, batch_size=len(DIGITS), shuffle=False,
                                verbose=0).history
    return {"metrics": sorted(history), "kl_loss": history["kl_loss"]}


EXAMPLE = Example(build=build,
                  compile_args=lambda: {"optimizer": keras.optimizers.Adam()},
                  steps=steps, compare_weights=False)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device_where_the_sampling_noise_does_not_reach(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

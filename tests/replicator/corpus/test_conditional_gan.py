"""keras-io examples/generative/conditional_gan.py

A GAN conditioned on class labels: a ``ConditionalGAN`` model with no ``call``, its own
``compile(d_optimizer, g_optimizer, loss_fn)`` and a ``train_step`` that calls its
sub-models ``self.generator`` and ``self.discriminator`` and applies two optimizers;
its latent vectors come from ``keras.random.normal`` with the model's own
``SeedGenerator``, drawn in ``train_step`` (not in a replica), so they are the same on
both sides. The trained generator then predicts. Corpus copy: 8x8 images, 3 classes,
tiny layers; the template is built with ``build(input_shape)`` (it has no ``call``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import DEVICES, Example, Session, assert_trains_like_one_device
from keras import layers, ops

num_channels = 1
num_classes = 3
image_size = 8
latent_dim = 4
generator_in_channels = latent_dim + num_classes
discriminator_in_channels = num_channels + num_classes


class ConditionalGAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.gen_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.disc_loss_tracker = keras.metrics.Mean(name="discriminator_loss")

    @property
    def metrics(self):
        return [self.gen_loss_tracker, self.disc_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, data):
        # Unpack the data.
        real_images, one_hot_labels = data

        # Add dummy dimensions to the labels so that they can be concatenated with
        # the images. This is for the discriminator.
        image_one_hot_labels = one_hot_labels[:, :, None, None]
        image_one_hot_labels = ops.repeat(
            image_one_hot_labels, repeats=[image_size * image_size]
        )
        image_one_hot_labels = ops.reshape(
            image_one_hot_labels, (-1, image_size, image_size, num_classes)
        )

        # Sample random points in the latent space and concatenate the labels.
        # This is for the generator.
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        random_vector_labels = ops.concatenate(
            [random_latent_vectors, one_hot_labels], axis=1
        )

        # Decode the noise (guided by labels) to fake images.
        generated_images = self.generator(random_vector_labels)

        # Combine them with real images. Note that we are concatenating the labels
        # with these images here.
        fake_image_and_labels = ops.concatenate(
            [generated_images, image_one_hot_labels], -1
        )
        real_image_and_labels = ops.concatenate([real_images, image_one_hot_labels], -1)
        combined_images = ops.concatenate(
            [fake_image_and_labels, real_image_and_labels], axis=0
        )

        # Assemble labels discriminating real from fake images.
        labels = ops.concatenate(
            [ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0
        )

        # Train the discriminator.
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights)
        )

        # Sample random points in the latent space.
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        random_vector_labels = ops.concatenate(
            [random_latent_vectors, one_hot_labels], axis=1
        )

        # Assemble labels that say "all real images".
        misleading_labels = ops.zeros((batch_size, 1))

        # Train the generator (note that we should *not* update the weights
        # of the discriminator)!
        with tf.GradientTape() as tape:
            fake_images = self.generator(random_vector_labels)
            fake_image_and_labels = ops.concatenate(
                [fake_images, image_one_hot_labels], -1
            )
            predictions = self.discriminator(fake_image_and_labels)
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        # Monitor loss.
        self.gen_loss_tracker.update_state(g_loss)
        self.disc_loss_tracker.update_state(d_loss)
        return {
            "g_loss": self.gen_loss_tracker.result(),
            "d_loss": self.disc_loss_tracker.result(),
        }


def build() -> keras.Model:
    discriminator = keras.Sequential(
        [
            keras.layers.InputLayer((image_size, image_size, discriminator_in_channels)),
            layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.layers.InputLayer((generator_in_channels,)),
            layers.Dense(2 * 2 * generator_in_channels),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((2, 2, generator_in_channels)),
            layers.Conv2DTranspose(4, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(4, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    cond_gan = ConditionalGAN(discriminator=discriminator, generator=generator,
                              latent_dim=latent_dim)
    cond_gan.build((None, image_size, image_size, num_channels))
    return cond_gan


_rng = np.random.default_rng(0)
ALL_DIGITS = _rng.random((8, image_size, image_size, num_channels)).astype("float32")
ALL_LABELS = keras.utils.to_categorical(_rng.integers(0, num_classes, size=8), num_classes)
NOISE_AND_LABELS = np.concatenate(
    [_rng.normal(size=(5, latent_dim)), np.eye(num_classes)[[0, 1, 2, 1, 0]]],
    axis=1).astype("float32")


def steps(session: Session) -> dict[str, object]:
    history = session.model.fit(ALL_DIGITS, ALL_LABELS, batch_size=4, epochs=2,
                                shuffle=False, verbose=0).history
    trained_gen = session.wrap(session.template.generator)
    return {"history": history,
            "predictions": trained_gen.predict(NOISE_AND_LABELS, verbose=0)}


EXAMPLE = Example(
    build=build,
    compile_args=lambda: {
        "d_optimizer": keras.optimizers.Adam(learning_rate=0.0003),
        "g_optimizer": keras.optimizers.Adam(learning_rate=0.0003),
        "loss_fn": keras.losses.BinaryCrossentropy(from_logits=True),
    },
    steps=steps,
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

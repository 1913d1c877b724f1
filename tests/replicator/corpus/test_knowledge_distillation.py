"""keras-io examples/vision/knowledge_distillation.py

A ``Distiller`` with its own ``compile(optimizer, metrics, student_loss_fn,
distillation_loss_fn, alpha, temperature)``, whose ``call`` runs its sub-model
``self.student`` and whose ``compute_loss`` override runs ``self.teacher`` on the
inputs and mixes the student loss with a KL-divergence distillation loss (the Keras 3
version of the example overrides ``compute_loss``; the older one overrode
``train_step`` and ``test_step``). It is then evaluated with the stock ``test_step``,
which goes through the same ``compute_loss``. Corpus copy: 8x8 random images, 4
classes, tiny convolutions; the teacher keeps its initial weights (the example trains
it first, on one device, which is not what is compared here).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers, ops

INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 4


class Distiller(keras.Model):
    def __init__(self, student, teacher):
        super().__init__()
        self.teacher = teacher
        self.student = student

    def compile(
        self,
        optimizer,
        metrics,
        student_loss_fn,
        distillation_loss_fn,
        alpha=0.1,
        temperature=3,
    ):
        super().compile(optimizer=optimizer, metrics=metrics)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False
    ):
        teacher_pred = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)

        distillation_loss = self.distillation_loss_fn(
            ops.softmax(teacher_pred / self.temperature, axis=1),
            ops.softmax(y_pred / self.temperature, axis=1),
        ) * (self.temperature**2)

        loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
        return loss

    def call(self, x):
        return self.student(x)


def build() -> keras.Model:
    teacher = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(8, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
            layers.Conv2D(8, (3, 3), strides=(2, 2), padding="same"),
            layers.Flatten(),
            layers.Dense(NUM_CLASSES),
        ],
        name="teacher",
    )
    student = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
            layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same"),
            layers.Flatten(),
            layers.Dense(NUM_CLASSES),
        ],
        name="student",
    )
    distiller = Distiller(student=student, teacher=teacher)
    distiller.build((None, *INPUT_SHAPE))
    return distiller


_rng = np.random.default_rng(0)
X_TRAIN = _rng.random((8, *INPUT_SHAPE)).astype("float32")
Y_TRAIN = _rng.integers(0, NUM_CLASSES, size=8)
X_TEST = _rng.random((6, *INPUT_SHAPE)).astype("float32")
Y_TEST = _rng.integers(0, NUM_CLASSES, size=6)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {
        "optimizer": keras.optimizers.Adam(),
        "metrics": [keras.metrics.SparseCategoricalAccuracy()],
        "student_loss_fn": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "distillation_loss_fn": keras.losses.KLDivergence(),
        "alpha": 0.1,
        "temperature": 10,
    },
    steps=fit_steps(X_TRAIN, Y_TRAIN, batch_size=4, epochs=2, evaluate=(X_TEST, Y_TEST)),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

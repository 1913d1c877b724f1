"""keras-io guides/functional_api.py ("Models with multiple inputs and outputs")

The ticket-priority model: three named inputs (title and body token sequences, tag
vectors) and two outputs (a priority logit and department logits), compiled with loss
and loss-weight dicts keyed by output name, trained on dicts of inputs and targets.
Corpus copy: tiny vocabulary and layers, titles of 3 tokens and bodies of 4
(fixed-length inputs for the guide's variable-length ones), and the LSTMs unrolled
(``unroll=True``: the same arithmetic over a fixed sequence length; a replicated
``tf.while_loop`` LSTM takes about ten times as long to trace as on one device, more
than the corpus's time allows).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers

num_tags = 5
num_words = 30
num_departments = 3


def build() -> keras.Model:
    title_input = keras.Input(shape=(3,), name="title")
    body_input = keras.Input(shape=(4,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 4)(title_input)
    body_features = layers.Embedding(num_words, 4)(body_input)
    title_features = layers.LSTM(4, unroll=True)(title_features)
    body_features = layers.LSTM(3, unroll=True)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    return keras.Model(inputs=[title_input, body_input, tags_input],
                       outputs=[priority_pred, department_pred])


def _tickets(rows: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    inputs = {"title": rng.integers(num_words, size=(rows, 3)),
              "body": rng.integers(num_words, size=(rows, 4)),
              "tags": rng.integers(2, size=(rows, num_tags)).astype("float32")}
    targets = {"priority": rng.random(size=(rows, 1)),
               "department": rng.integers(2, size=(rows, num_departments))}
    return inputs, targets


INPUTS, TARGETS = _tickets(8, seed=0)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {
        "optimizer": keras.optimizers.RMSprop(1e-3),
        "loss": {
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        "loss_weights": {"priority": 1.0, "department": 0.2},
    },
    steps=fit_steps(INPUTS, TARGETS, epochs=2, batch_size=4),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

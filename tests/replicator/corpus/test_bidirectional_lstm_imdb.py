"""keras-io examples/nlp/bidirectional_lstm_imdb.py

Two stacked bidirectional LSTMs over embedded, left-padded reviews, a sigmoid
classifier, Adam and binary cross-entropy. Corpus copy: tiny vocabulary and layers,
reviews of 3 tokens (``Input(shape=(maxlen,))`` for the example's variable-length
input), no validation data, the LSTMs unrolled (``unroll=True``: the same arithmetic
over a fixed sequence length; a replicated ``tf.while_loop`` LSTM takes about ten times
as long to trace as on one device, more than the corpus's time allows), and
``mask_zero=True`` on the ``Embedding`` (as in
``guides/understanding_masking_and_padding.py``), so that both LSTMs skip the padding
through the Keras mask, which the replicated model must carry from every replica's rows.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers

max_features = 30
maxlen = 3


def build() -> keras.Model:
    inputs = keras.Input(shape=(maxlen,), dtype="int32")
    x = layers.Embedding(max_features, 4, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.LSTM(3, return_sequences=True, unroll=True))(x)
    x = layers.Bidirectional(layers.LSTM(3, unroll=True))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def _reviews(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reviews = [rng.integers(1, max_features, size=rng.integers(1, maxlen + 3)).tolist()
               for _ in range(rows)]
    return (keras.utils.pad_sequences(reviews, maxlen=maxlen),
            rng.integers(0, 2, size=rows).astype("float32"))


X_TRAIN, Y_TRAIN = _reviews(8, seed=0)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"optimizer": "adam", "loss": "binary_crossentropy",
                          "metrics": ["accuracy"]},
    steps=fit_steps(X_TRAIN, Y_TRAIN, batch_size=4, epochs=2),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

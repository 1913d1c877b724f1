"""keras-io examples/nlp/text_classification_with_transformer.py

A Transformer block and a ``TokenAndPositionEmbedding`` layer (its position
``Embedding`` is looked up with ``ops.arange(maxlen)``, the same rows for every sample)
classify token sequences, trained with Adam. Corpus copy: tiny dimensions, random
tokens, and the Dropout rates set to 0.0 (replicas draw independent masks).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers, ops

VOCAB_SIZE = 40
MAXLEN = 10
EMBED_DIM = 8
NUM_HEADS = 2
FF_DIM = 8


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = ops.shape(x)[-1]
        positions = ops.arange(start=0, stop=maxlen, step=1)
        positions = self.pos_emb(positions)
        x = self.token_emb(x)
        return x + positions


def build() -> keras.Model:
    inputs = layers.Input(shape=(MAXLEN,))
    x = TokenAndPositionEmbedding(MAXLEN, VOCAB_SIZE, EMBED_DIM)(inputs)
    x = TransformerBlock(EMBED_DIM, NUM_HEADS, FF_DIM, rate=0.0)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.0)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.0)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def _reviews(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token sequences (as ``keras.utils.pad_sequences`` makes them)."""
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(1, VOCAB_SIZE, size=rng.integers(3, MAXLEN + 4)).tolist()
                 for _ in range(rows)]
    return (keras.utils.pad_sequences(sequences, maxlen=MAXLEN),
            rng.integers(0, 2, size=rows))


X_TRAIN, Y_TRAIN = _reviews(16, seed=0)
X_VAL, Y_VAL = _reviews(6, seed=1)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                          "metrics": ["accuracy"]},
    steps=fit_steps(X_TRAIN, Y_TRAIN, batch_size=8, epochs=2,
                    validation_data=(X_VAL, Y_VAL)),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

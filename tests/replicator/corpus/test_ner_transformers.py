"""keras-io examples/nlp/ner_transformers.py

A subclassed ``NERModel`` (Transformer block over token and position embeddings) tags
every token, trained with Adam and the example's own ``keras.losses.Loss`` subclass,
which leaves padded tokens out of the loss; then tags ONE sentence with ``predict`` (a
batch of one row, fewer rows than devices). Corpus copy: tiny dimensions, random
tokens padded with 0 as ``padded_batch`` pads them, all Dropout rates set to 0.0
(replicas draw independent masks), and ``keras.ops.shape`` / ``keras.ops.cast`` for
the example's ``keras.ops.backend.shape`` / ``keras.backend.cast``, which Keras 3.14+
does not export.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps
from keras import layers

NUM_TAGS = 10
VOCAB_SIZE = 30
MAXLEN = 12


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [
                keras.layers.Dense(ff_dim, activation="relu"),
                keras.layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, inputs):
        maxlen = keras.ops.shape(inputs)[-1]
        positions = keras.ops.arange(start=0, stop=maxlen, step=1)
        position_embeddings = self.pos_emb(positions)
        token_embeddings = self.token_emb(inputs)
        return token_embeddings + position_embeddings


class NERModel(keras.Model):
    def __init__(
        self, num_tags, vocab_size, maxlen=128, embed_dim=32, num_heads=2, ff_dim=32
    ):
        super().__init__()
        self.embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
        self.transformer_block = TransformerBlock(embed_dim, num_heads, ff_dim, rate=0.0)
        self.dropout1 = layers.Dropout(0.0)
        self.ff = layers.Dense(ff_dim, activation="relu")
        self.dropout2 = layers.Dropout(0.0)
        self.ff_final = layers.Dense(num_tags, activation="softmax")

    def call(self, inputs, training=False):
        x = self.embedding_layer(inputs)
        x = self.transformer_block(x)
        x = self.dropout1(x, training=training)
        x = self.ff(x)
        x = self.dropout2(x, training=training)
        x = self.ff_final(x)
        return x


class CustomNonPaddingTokenLoss(keras.losses.Loss):
    def __init__(self, name="custom_ner_loss"):
        super().__init__(name=name)

    def call(self, y_true, y_pred):
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        loss = loss_fn(y_true, y_pred)
        mask = keras.ops.cast((y_true > 0), dtype="float32")
        loss = loss * mask
        return keras.ops.sum(loss) / keras.ops.sum(mask)


def build() -> keras.Model:
    ner_model = NERModel(NUM_TAGS, VOCAB_SIZE, maxlen=MAXLEN, embed_dim=8, num_heads=2,
                         ff_dim=8)
    ner_model(np.zeros((1, MAXLEN), dtype="int64"))
    return ner_model


def _sentences(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and tags (``tag + 1``), both 0 past each sentence's end."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB_SIZE, size=(rows, MAXLEN))
    tags = rng.integers(1, NUM_TAGS, size=(rows, MAXLEN))
    for row, length in enumerate(rng.integers(3, MAXLEN + 1, size=rows)):
        tokens[row, length:] = 0
        tags[row, length:] = 0
    return tokens, tags


TOKENS, TAGS = _sentences(8, seed=0)
SAMPLE_INPUT, _ = _sentences(1, seed=1)

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"optimizer": "adam", "loss": CustomNonPaddingTokenLoss()},
    steps=fit_steps(TOKENS, TAGS, batch_size=4, epochs=2, predict=SAMPLE_INPUT),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

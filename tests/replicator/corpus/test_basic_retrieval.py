"""keras-io examples/keras_rs/basic_retrieval.py

A two-tower retrieval model: user and movie ``Embedding`` tables (sparse gradients),
a ``call`` that returns a dict (and retrieves the top movies only when not training),
a ``compute_loss`` override that looks up the batch's movies in the candidate tower
(the template's own layer, outside its ``call``) and scores them against the user
embeddings, Adagrad(0.1); then the top movies of ONE user (one row, fewer than
devices) with ``predict``. Corpus copy: tiny tables and a few ratings, and, for
``keras_rs.layers.BruteForceRetrieval(k, return_scores=False)`` (keras-rs is not a
dependency), a layer doing what it does: score the queries against every candidate
embedding and return the indices of the ``k`` best.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, assert_trains_like_one_device, fit_steps

USERS_COUNT = 12
MOVIES_COUNT = 15


class BruteForceRetrieval(keras.layers.Layer):
    """The indices of the ``k`` candidates scoring highest against each query."""

    def __init__(self, k: int = 10, return_scores: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.return_scores = return_scores
        self.candidate_embeddings: keras.Variable | None = None

    def call(self, inputs):
        scores = keras.ops.matmul(inputs, keras.ops.transpose(self.candidate_embeddings))
        top_scores, top_ids = keras.ops.top_k(scores, k=self.k)
        return (top_scores, top_ids) if self.return_scores else top_ids


class RetrievalModel(keras.Model):
    def __init__(self, num_users, num_candidates, embedding_dimension=32, **kwargs):
        super().__init__(**kwargs)
        # Our query tower, simply an embedding table.
        self.user_embedding = keras.layers.Embedding(num_users, embedding_dimension)
        # Our candidate tower, simply an embedding table.
        self.candidate_embedding = keras.layers.Embedding(num_candidates, embedding_dimension)
        # The layer that performs the retrieval.
        self.retrieval = BruteForceRetrieval(k=3, return_scores=False)
        self.loss_fn = keras.losses.MeanSquaredError()

    def build(self, input_shape):
        self.user_embedding.build(input_shape)
        self.candidate_embedding.build(input_shape)
        # In this case, the candidates are directly the movie embeddings.
        # We take a shortcut and directly reuse the variable.
        self.retrieval.candidate_embeddings = self.candidate_embedding.embeddings
        self.retrieval.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=False):
        user_embeddings = self.user_embedding(inputs)
        result = {
            "user_embeddings": user_embeddings,
        }
        if not training:
            # Skip the retrieval of top movies during training as the
            # predictions are not used.
            result["predictions"] = self.retrieval(user_embeddings)
        return result

    def compute_loss(self, x, y, y_pred, sample_weight, training=True):
        candidate_id, rating = y["movie_id"], y["rating"]
        user_embeddings = y_pred["user_embeddings"]
        candidate_embeddings = self.candidate_embedding(candidate_id)

        labels = keras.ops.expand_dims(rating, -1)
        # Compute the affinity score by multiplying the two embeddings.
        scores = keras.ops.sum(
            keras.ops.multiply(user_embeddings, candidate_embeddings),
            axis=1,
            keepdims=True,
        )
        return self.loss_fn(labels, scores, sample_weight)


def build() -> keras.Model:
    model = RetrievalModel(USERS_COUNT + 1, MOVIES_COUNT + 1, embedding_dimension=4)
    model.build((None,))
    return model


_rng = np.random.default_rng(0)
USER_IDS = _rng.integers(1, USERS_COUNT + 1, size=15).astype("int32")
RATINGS = {"movie_id": _rng.integers(1, MOVIES_COUNT + 1, size=15).astype("int32"),
           "rating": ((_rng.integers(1, 6, size=15) - 1.0) / 4.0).astype("float32")}

EXAMPLE = Example(
    build=build,
    compile_args=lambda: {"optimizer": keras.optimizers.Adagrad(learning_rate=0.1)},
    steps=fit_steps(USER_IDS, RATINGS, batch_size=5, epochs=2,
                    predict=np.array([7], dtype="int32")),
)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

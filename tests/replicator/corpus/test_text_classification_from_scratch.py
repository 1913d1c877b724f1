"""keras-io examples/nlp/text_classification_from_scratch.py

A ``TextVectorization`` layer with the example's custom standardization turns raw
review strings into token ids; a 1D convnet is trained on the vectorized reviews (the
last batch of an epoch is short: 1 row, fewer rows than devices), with validation
data. Then the end-to-end model of the example's last section, a string ``Input``
feeding the vectorizer and the trained model, is compiled and evaluated on raw
strings, and classifies ONE review with ``predict`` (one row, fewer than devices).
Corpus copy: a few synthetic reviews, tiny vocabulary and layers, sequences of 25
tokens (the shortest that two stride-3 width-7 convolutions accept), and the Dropout
rates set to 0.0 (replicas draw independent masks).
"""

from __future__ import annotations

import functools
import re
import string

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import DEVICES, Example, Session, assert_trains_like_one_device
from keras import layers

max_features = 40
embedding_dim = 4
sequence_length = 25
WORDS = ["great", "film", "bad", "plot", "actors", "boring", "loved", "it", "not", "the"]


def custom_standardization(input_data):
    lowercase = tf.strings.lower(input_data)
    stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(stripped_html, f"[{re.escape(string.punctuation)}]", "")


def _reviews(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw reviews, with HTML breaks and punctuation, and their labels."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(4, 30))) + "!<br />The End."
             for _ in range(rows)]
    return np.array(texts), rng.integers(0, 2, size=rows)


RAW_TRAIN, Y_TRAIN = _reviews(9, seed=0)
RAW_VAL, Y_VAL = _reviews(4, seed=1)
RAW_TEST, Y_TEST = _reviews(4, seed=2)


@functools.cache
def vectorize_layer() -> layers.TextVectorization:
    """The example's vectorizer, adapted to the training reviews."""
    vectorizer = layers.TextVectorization(
        standardize=custom_standardization,
        max_tokens=max_features,
        output_mode="int",
        output_sequence_length=sequence_length,
    )
    vectorizer.adapt(RAW_TRAIN)
    return vectorizer


def vectorize_text(text: np.ndarray) -> np.ndarray:
    return vectorize_layer()(tf.expand_dims(text, -1)).numpy()


def build() -> keras.Model:
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.0)(x)
    x = layers.Conv1D(4, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(4, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(4, activation="relu")(x)
    x = layers.Dropout(0.0)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions)


def _compile_args() -> dict[str, object]:
    return {"loss": "binary_crossentropy", "optimizer": "adam", "metrics": ["accuracy"]}


def steps(session: Session) -> dict[str, object]:
    history = session.model.fit(vectorize_text(RAW_TRAIN), Y_TRAIN, batch_size=4, epochs=2,
                                validation_data=(vectorize_text(RAW_VAL), Y_VAL),
                                shuffle=False, verbose=0).history
    inputs = keras.Input(shape=(1,), dtype="string")
    indices = vectorize_layer()(inputs)
    outputs = session.template(indices)
    end_to_end_model = session.wrap(keras.Model(inputs, outputs))
    end_to_end_model.compile(**_compile_args())
    raw_test_ds = tf.data.Dataset.from_tensor_slices((RAW_TEST[:, None], Y_TEST)).batch(4)
    evaluation = end_to_end_model.evaluate(raw_test_ds, verbose=0, return_dict=True)
    one_review = end_to_end_model.predict(tf.constant(RAW_TEST[:1, None]), verbose=0)
    return {"history": history, "evaluation": evaluation, "predictions": one_review}


EXAMPLE = Example(build=build, compile_args=_compile_args, steps=steps)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

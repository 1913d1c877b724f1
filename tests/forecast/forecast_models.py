"""Small models of known sizes for the forecast tests, and what TensorFlow really sends."""

from __future__ import annotations

from collections import Counter
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.eager import context

from nbreplica.forecasting import traffic
from nbreplica.forecasting.placement import locate

#: The MLP: inputs, hidden units, outputs.
D0, D1, D2 = 8, 16, 4
#: The convnet: image side, channels, filters, kernel side, classes.
SIDE, CHANNELS, FILTERS, KERNEL, CLASSES = 10, 3, 6, 3, 5
#: The embedding model: vocabulary, embedding width, tokens per row, outputs.
VOCABULARY, WIDTH, TOKENS, OUTPUTS = 50, 8, 5, 4


def mlp(optimizer: str = "adam") -> keras.Model:
    inputs = keras.Input((D0,))
    hidden = keras.layers.Dense(D1, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(D2)(hidden), name="mlp")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def convnet() -> keras.Model:
    inputs = keras.Input((SIDE, SIDE, CHANNELS))
    x = keras.layers.Conv2D(FILTERS, KERNEL, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x),
                        name="convnet")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


class _VocabularyScores(keras.layers.Layer):
    """Scores each vocabulary entry by its embedding: the table read whole."""

    def __init__(self, embedding: keras.layers.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def call(self, pooled: Any) -> Any:
        return keras.ops.matmul(pooled, keras.ops.transpose(self.embedding.embeddings))


def embedding_model(tied: bool = False) -> keras.Model:
    """Token ids to an embedding, averaged, to a dense layer; with ``tied``, the table
    is also read whole (to score the vocabulary), as in a language model whose input
    and output embeddings are tied."""
    tokens = keras.Input((TOKENS,), dtype="int32")
    embedding = keras.layers.Embedding(VOCABULARY, WIDTH)
    pooled = keras.layers.GlobalAveragePooling1D()(embedding(tokens))
    if tied:
        pooled = _VocabularyScores(embedding)(pooled)
    model = keras.Model(tokens, keras.layers.Dense(OUTPUTS)(pooled), name="embedding_model")
    model.compile(optimizer="sgd", loss="mse")
    return model


def specs(model: keras.Model, rows: int) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    return (tf.TensorSpec((rows, *model.inputs[0].shape[1:]), model.inputs[0].dtype),
            tf.TensorSpec((rows, *model.outputs[0].shape[1:])))


def traced_step(step: Any, model: keras.Model, rows: int) -> Any:
    """The concrete function of ``step`` (a train step taking ``(x, y)``)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return tf.function(step, autograph=False).get_concrete_function(specs(model, rows))


def sent_by_tensorflow(function: Any, model: keras.Model, rows: int) -> Counter:
    """Bytes per (source, destination) of every ``_Send`` in the partitioned graphs of
    one run of ``function`` (values the function returns to its caller, and control
    tokens, left out)."""
    x_spec, y_spec = specs(model, rows)
    context.enable_run_metadata()
    try:
        function(tf.ones(x_spec.shape, x_spec.dtype), tf.ones(y_spec.shape))
        metadata = context.export_run_metadata()
    finally:
        context.disable_run_metadata()
    graph = function.graph
    returned = {t.name for t in graph.outputs}
    names = {op.name for op in graph.get_operations()}
    sent: Counter = Counter()
    for partitioned in metadata.function_graphs:
        for partition in partitioned.partition_graphs:
            for node in partition.node:
                if node.op not in ("_Send", "_HostSend"):
                    continue
                name = node.input[0] if ":" in node.input[0] else node.input[0] + ":0"
                if name in returned or name.startswith("^"):
                    continue
                op_name, index = name.rsplit(":", 1)
                if op_name not in names:
                    continue  # the partitioner's own control tokens, carrying no data
                tensor = graph.get_operation_by_name(op_name).outputs[int(index)]
                sent[(locate(node.attr["send_device"].s.decode()),
                      locate(node.attr["recv_device"].s.decode()))] += traffic.tensor_bytes(tensor)
    return sent


def counted(function: Any) -> Counter:
    """Bytes per (source, destination) the forecast counts in ``function``'s graph."""
    summed: Counter = Counter()
    for transfer in traffic.transfers(function.graph):
        summed[(transfer.source, transfer.destination)] += transfer.bytes
    return summed

"""What tracing a replicated step costs, against the plain template's step.

For an Embedding + LSTM text classifier and an MLP, traces the training step plainly
and replicated over 2, 4 and 8 emulated devices, side by side in one process, and
prints per variant:

- ``ops``: the nodes of the traced ``train_step``'s graph, functions it calls included (an
  LSTM's loop body, its gradient);
- ``ops/plain``: that count over the plain step's;
- ``first fit s``: wall time of a first one-step ``fit`` (tracing included);
- ``first/plain``: that time over the plain model's.

    python benchmarks/bench_tracing.py [--devices 2,4,8]
"""

from __future__ import annotations

import argparse
import time

from _quiet import start_tensorflow

tf = start_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402

BATCH, LENGTH, VOCABULARY = 32, 20, 200


def text_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32")
    h = keras.layers.Embedding(VOCABULARY, 16, mask_zero=True)(tokens)
    h = keras.layers.LSTM(16)(h)
    return keras.Model(tokens, keras.layers.Dense(2)(h), name="text")


def mlp() -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((LENGTH,), dtype="int32")
    h = keras.layers.Dense(64, activation="relu")(keras.ops.cast(x, "float32"))
    return keras.Model(x, keras.layers.Dense(2)(h), name="mlp")


def traced_ops(model: keras.Model, x: np.ndarray, y: np.ndarray) -> int:
    """Nodes in ``model``'s traced training step, the functions it calls included."""
    specs = (tf.TensorSpec((None, *x.shape[1:]), x.dtype),
             tf.TensorSpec((None, *y.shape[1:]), y.dtype))
    step = tf.function(model.train_step).get_concrete_function(specs)
    graph = step.graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def first_fit_seconds(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    return time.perf_counter() - start


def measure(build, devices: list[int]) -> list[tuple[str, int, float]]:
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCABULARY, size=(BATCH, LENGTH)).astype("int32")
    y = rng.normal(size=(BATCH, 2)).astype("float32")
    rows = []
    for count in [1, *devices]:
        template = build()
        model = template if count == 1 else nbreplica.replicate(template, gpus=count)
        model.compile(optimizer="adam", loss="mse")
        seconds = first_fit_seconds(model, x, y)
        rows.append(("plain" if count == 1 else f"replicate x{count}",
                     traced_ops(model, x, y), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="2,4,8")
    devices = [int(d) for d in parser.parse_args().devices.split(",")]
    print(f"{'model':<6} {'variant':<14} {'ops':>7} {'ops/plain':>10} "
          f"{'first fit s':>12} {'first/plain':>12}")
    for build in (text_classifier, mlp):
        rows = measure(build, devices)
        plain_ops, plain_seconds = rows[0][1], rows[0][2]
        for variant, ops, seconds in rows:
            print(f"{build.__name__[:6]:<6} {variant:<14} {ops:>7} {ops / plain_ops:>9.2f}x "
                  f"{seconds:>12.2f} {seconds / plain_seconds:>11.2f}x")


if __name__ == "__main__":
    main()

"""Throughput of `replicate` against the plain template and MirroredStrategy.

Trains the same small MLP and convnet with the same global batch on 1, 2, 4 and 8
emulated devices, three ways, interleaved within each repeat: the plain template on
one device, `replicate` over N devices, and `tf.distribute.MirroredStrategy` over the
same N devices. Each (model, device count) pair runs in its own worker process: two
MirroredStrategy instances in one process collide on their collective-op keys. Prints samples/s (medians over repeats) and the ratios.

    python benchmarks/bench_replicate.py [--repeats 5] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEVICE_COUNTS = (1, 2, 4, 8)
MODELS = {"mlp": {"batch": 512}, "cnn": {"batch": 128}}


def build(kind: str):
    import keras

    keras.utils.set_random_seed(0)
    if kind == "mlp":
        x = keras.Input((64,))
        h = keras.layers.Dense(256, activation="relu")(x)
        h = keras.layers.Dense(256, activation="relu")(h)
        return keras.Model(x, keras.layers.Dense(8)(h))
    x = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(16, 3, activation="relu")(x)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(10)(h))


def data(kind: str, rows: int):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (64,) if kind == "mlp" else (32, 32, 3)
    return (rng.normal(size=(rows, *shape)).astype("float32"),
            rng.normal(size=(rows, 8 if kind == "mlp" else 10)).astype("float32"))


def worker(kind: str, devices: int, repeats: int, steps: int) -> dict:
    """Runs in a fresh process with 8 emulated GPUs; returns samples/s per variant."""
    os.environ["NBREPLICA_EMULATE_GPUS"] = "8"
    import keras
    import tensorflow as tf

    import nbreplica

    device_names = [d.device for d in nbreplica.list_devices()[:devices]]
    batch = MODELS[kind]["batch"]
    x, y = data(kind, batch * steps)
    variants = {}
    with tf.device(device_names[0]):
        variants["plain"] = build(kind)
    if devices >= 2:
        variants["replicate"] = nbreplica.replicate(build(kind), gpus=devices)
    with tf.distribute.MirroredStrategy(device_names).scope():
        variants["mirrored"] = build(kind)
    for model in variants.values():
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        model.fit(x[: batch * 3], y[: batch * 3], batch_size=batch, verbose=0)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, model in variants.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
            samples[name].append(len(x) / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "DEVICES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, devices = args.worker
        print(json.dumps(worker(kind, int(devices), args.repeats, args.steps)))
        return

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"samples/s, medians of {args.repeats} interleaved repeats of {args.steps} steps "
          "(emulated devices: logical CPU devices sharing this machine's cores)")
    print(f"{'model':5} {'devices':>7} {'plain':>9} {'replicate':>10} {'mirrored':>9} "
          f"{'repl/plain':>11} {'repl/mirr':>10}")
    for kind in MODELS:
        for devices in DEVICE_COUNTS:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", kind, str(devices), "--repeats",
                 str(args.repeats), "--steps", str(args.steps)],
                env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            repl = r.get("replicate")
            ratio_plain = f"{repl / r['plain']:.2f}x" if repl else "-"
            ratio_mirr = f"{repl / r['mirrored']:.2f}x" if repl else "-"
            print(f"{kind:5} {devices:>7} {r['plain']:>9.0f} {repl or 0:>10.0f} "
                  f"{r['mirrored']:>9.0f} {ratio_plain:>11} {ratio_mirr:>10}", flush=True)


if __name__ == "__main__":
    main()

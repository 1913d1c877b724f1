"""Throughput of `replicate` against the plain template and MirroredStrategy.

Trains the same small MLP and convnet with the same global batch on 1, 2, 4 and 8
emulated devices, four ways, interleaved in a rotating order within each repeat:

- ``plain``: the template, every op on one device (the host CPU device);
- ``replicate``: ``nbreplica.replicate`` over N emulated devices;
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over the same N devices;
- ``floor``: the template run on N sub-batches inside one step, all on one device,
  with one gradient tape. It is what splitting the batch costs by itself, with no
  placement, transfers or merge: emulated devices share the same cores, so no
  replicator that runs N real sub-batches can expect to beat it.

Every variant reads the same in-memory, cached ``tf.data`` pipeline, so the training
step is what is timed, not numpy batching. A repeat's samples/s is the steady state
of one ``fit``: the global batch over the mean duration of its steps after the first
(which also starts the epoch's input iterator, slow for MirroredStrategy).

Each (model, device count) pair runs in fresh worker processes, one for
plain/replicate/floor and one for plain/mirrored: two MirroredStrategy instances in
one process collide on their collective-op keys, and once a MirroredStrategy has
trained, its distributed iterator's per-device threads stay in the process and slow
every later multi-device step. Prints samples/s (medians over repeats) and, for each
ratio, the median of the per-repeat paired ratios with its 95% interval;
replicate/mirrored chains the two workers through their shared plain baseline.

    python benchmarks/bench_replicate.py [--repeats 9] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _quiet import start_tensorflow

tf = start_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402
from nbreplica.bench.stats import Interval, median_interval

DEVICE_COUNTS = (1, 2, 4, 8)
MODELS = {"mlp": {"batch": 512}, "cnn": {"batch": 128}}
COLUMNS = ("plain", "replicate", "mirrored", "floor", "replicate/plain", "floor/plain",
           "replicate/floor", "replicate/mirrored")


def build(kind: str) -> keras.Model:
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


def data(kind: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (64,) if kind == "mlp" else (32, 32, 3)
    return (rng.normal(size=(rows, *shape)).astype("float32"),
            rng.normal(size=(rows, 8 if kind == "mlp" else 10)).astype("float32"))


class SubBatchFloor(keras.Model):
    """Runs ``template`` on ``parts`` equal sub-batches of every batch, on one device."""

    def __init__(self, template: keras.Model, parts: int) -> None:
        super().__init__()
        self.template = template
        self.parts = parts

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        pieces = tf.split(x, self.parts)
        return tf.concat([self.template(p, training=training) for p in pieces], 0)

    def train_step(self, batch: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        x, y = batch
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return {"loss": loss}


class StepTimer(keras.callbacks.Callback):
    """The wall-clock duration of every training step.

    Not ``async_safe``, so Keras waits for each step's results before calling it:
    the times are those of completed steps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.durations: list[float] = []
        self._last = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if not self.durations:
            self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.durations.append(now - self._last)
        self._last = now


def worker(kind: str, devices: int, group: str, repeats: int,
           steps: int) -> dict[str, list[float]]:
    """Runs in a fresh process with 8 emulated GPUs (set by ``run_worker``); returns
    samples/s per repeat of the plain template and of ``group``'s variants
    ("split": replicate and floor; "mirrored": MirroredStrategy)."""
    batch = MODELS[kind]["batch"]
    x, y = data(kind, batch * steps)
    dataset = (tf.data.Dataset.from_tensor_slices((x, y))
               .batch(batch, drop_remainder=True).cache().repeat())
    variants = {"plain": build(kind)}
    if group == "split":
        variants["replicate"] = nbreplica.replicate(build(kind), gpus=devices)
        variants["floor"] = SubBatchFloor(build(kind), devices)
    else:
        device_names = [d.device for d in nbreplica.list_devices()[:devices]]
        with tf.distribute.MirroredStrategy(device_names).scope():
            variants["mirrored"] = build(kind)
    for model in variants.values():
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        model.fit(dataset, steps_per_epoch=3, verbose=0)  # warm-up: trace and build
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            timer = StepTimer()
            variants[name].fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                               callbacks=[timer])
            # The first step of every fit also starts the epoch's input iterator.
            samples[name].append(batch / statistics.fmean(timer.durations[1:]))
    return samples


def run_worker(kind: str, devices: int, group: str,
               args: argparse.Namespace) -> dict[str, list[float]]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NBREPLICA_EMULATE_GPUS": "8"}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(devices), group,
         "--repeats", str(args.repeats), "--steps", str(args.steps)],
        env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def paired_ratio(top: list[float], bottom: list[float]) -> Interval:
    return median_interval(a / b for a, b in zip(top, bottom))


def row(split: dict[str, list[float]] | None,
        mirrored: dict[str, list[float]]) -> dict[str, str]:
    """The table cells of one (model, device count): medians and paired ratios.

    ``plain`` is the split worker's baseline where there is one (1 device has none).
    """
    samples = {**mirrored, **(split or {})}  # the split worker's "plain" wins
    cells = {name: f"{statistics.median(values):,.0f}" for name, values in samples.items()}
    if split is None:
        return cells
    ratios = {"replicate/plain": paired_ratio(split["replicate"], split["plain"]),
              "floor/plain": paired_ratio(split["floor"], split["plain"]),
              "replicate/floor": paired_ratio(split["replicate"], split["floor"])}
    for name, ratio in ratios.items():
        cells[name] = f"{ratio.median:.2f}x [{ratio.low:.2f}, {ratio.high:.2f}]"
    mirrored_over_plain = paired_ratio(mirrored["mirrored"], mirrored["plain"]).median
    cells["replicate/mirrored"] = f"{ratios['replicate/plain'].median / mirrored_over_plain:.2f}x"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--devices", default=",".join(map(str, DEVICE_COUNTS)))
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DEVICES", "GROUP"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, devices, group = args.worker
        print(json.dumps(worker(kind, int(devices), group, args.repeats, args.steps)))
        return

    coverage = median_interval(range(1, args.repeats + 1)).coverage
    print(f"samples/s, medians of {args.repeats} interleaved repeats of {args.steps} steps "
          "(plain: the split worker's baseline where there is one). Ratios: median of "
          f"per-repeat paired ratios [order-statistic interval, {coverage:.0%} coverage]. "
          "Emulated devices are logical CPU devices sharing this machine's cores.")
    print("| model | devices | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for kind in args.models.split(","):
        for devices in map(int, args.devices.split(",")):
            split = run_worker(kind, devices, "split", args) if devices >= 2 else None
            cells = row(split, run_worker(kind, devices, "mirrored", args))
            print(f"| {kind} | {devices} | "
                  + " | ".join(cells.get(c, "-") for c in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()

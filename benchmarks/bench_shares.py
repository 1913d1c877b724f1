"""What ``replicate(model, shares="auto")`` costs and changes on identical devices.

Emulated devices are equally fast (logical devices of one CPU), so what can be
measured here is:

- the cost of one calibration (``shares="auto"``: the template timed alone on each
  device), in seconds and in training steps of the replicated model;
- how close to even the calibrated shares come on identical devices (largest
  relative deviation of a share from 1/N, over every calibration);
- that training split by those shares runs as fast as an even split: samples/s of
  ``shares=None`` and ``shares="auto"`` side by side, fits interleaved in a rotating
  order, and the median of the per-repeat paired ratios with its 95% interval.

    python benchmarks/bench_shares.py [--devices 4] [--repeats 9] [--steps 40]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

from _quiet import start_tensorflow

tf = start_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402
from nbreplica.bench.stats import median_interval  # noqa: E402
from nbreplica.replicator.calibration import calibrate  # noqa: E402
from nbreplica.replicator.shares import shares_from_times  # noqa: E402

BATCH = 512


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((64,))
    h = keras.layers.Dense(256, activation="relu")(x)
    h = keras.layers.Dense(256, activation="relu")(h)
    return keras.Model(x, keras.layers.Dense(8)(h), name="mlp")


def step_seconds(model: keras.Model, dataset: tf.data.Dataset, steps: int) -> list[float]:
    """Seconds of every step of one ``fit`` after its first (which starts the epoch)."""
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return list(np.diff(ends))


def calibrations(devices: int, repeats: int) -> tuple[list[float], list[tuple[float, ...]]]:
    """Seconds of ``repeats`` calibrations of a fresh template, and the shares each
    gave (what ``replicate(..., shares="auto")`` runs)."""
    seconds, shares = [], []
    for _ in range(repeats):
        template = build()
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its progress line
            times = calibrate(template, nbreplica.list_devices()[:devices])
        seconds.append(time.perf_counter() - started)
        shares.append(shares_from_times(times))
    return seconds, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * 8, 64)).astype("float32")
    y = rng.normal(size=(BATCH * 8, 8)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True) \
        .cache().repeat()

    seconds, shares = calibrations(args.devices, args.repeats)
    with contextlib.redirect_stdout(io.StringIO()):
        variants = {"even": nbreplica.replicate(build(), gpus=args.devices),
                    "auto": nbreplica.replicate(build(), gpus=args.devices, shares="auto")}
    for model in variants.values():
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        model.fit(dataset, steps_per_epoch=3, verbose=0)  # warm-up: trace and build
    rates: dict[str, list[float]] = {name: [] for name in variants}
    step_s: list[float] = []
    names = list(variants)
    for repeat in range(args.repeats):
        for name in names[repeat % 2:] + names[:repeat % 2]:
            durations = step_seconds(variants[name], dataset, args.steps)
            rates[name].append(BATCH / statistics.fmean(durations))
            if name == "even":
                step_s.append(statistics.median(durations))
    report(args, seconds, shares, rates, statistics.median(step_s),
           variants["auto"].shares)


def report(args: argparse.Namespace, seconds: list[float], shares: list[tuple[float, ...]],
           rates: dict[str, list[float]], step_s: float, trained: tuple[float, ...]) -> None:
    even = 1 / args.devices
    deviation = max(abs(s - even) / even for split in shares for s in split)
    ratio = median_interval(a / e for a, e in zip(rates["auto"], rates["even"]))
    calibration = statistics.median(seconds)
    print(f"MLP (64-256-256-8), batch {BATCH}, {args.devices} emulated devices, "
          f"{args.repeats} repeats of {args.steps} steps")
    print(f"calibration: {calibration:.3f} s (median of {len(seconds)}; "
          f"{min(seconds):.3f}-{max(seconds):.3f} s) = {calibration / step_s:.1f} training "
          f"steps of {1000 * step_s:.1f} ms")
    print(f"calibrated shares: at most {100 * deviation:.1f}% from even (1/{args.devices}) "
          f"over {len(shares)} calibrations; the trained model's: "
          + ", ".join(f"{s:.3f}" for s in trained))
    print(f"samples/s  even {statistics.median(rates['even']):,.0f}  "
          f"auto {statistics.median(rates['auto']):,.0f}  auto/even {ratio.median:.3f}x "
          f"[{ratio.low:.3f}, {ratio.high:.3f}]")


if __name__ == "__main__":
    main()

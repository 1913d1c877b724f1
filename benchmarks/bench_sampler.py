"""What device sampling costs.

1. One sample: a full NVML pass over 8 GPUs (pynvml's real binding code against the
   fake driver from nbreplica.testing), as ``nbreplica.snapshot()`` does it.
2. Training throughput of a small Keras model (plain ``model.fit`` on CPU) with a
   10 Hz ``nbreplica.Sampler`` running versus without, interleaved in one run (the
   order alternates each repeat), medians over the repeats; plus the CPU time the
   sampler's thread used as a share of the process's, which load on a shared machine
   disturbs far less than throughput.

Run: ``python benchmarks/bench_sampler.py [--repeats 30] [--rows 25000]`` (under two
minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _quiet import start_tensorflow

start_tensorflow(emulate=None)  # plain training on the CPU

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402
from nbreplica.testing import fake_nvml, plausible_gpus  # noqa: E402

SAMPLER_HZ = 10
GPUS = 8


def sample_seconds(samples: int = 3000) -> float:
    """Median seconds per ``snapshot()`` of all devices, over batches of 100."""
    for _ in range(100):
        nbreplica.snapshot()
    batches = []
    for _ in range(samples // 100):
        began = time.perf_counter()
        for _ in range(100):
            nbreplica.snapshot()
        batches.append((time.perf_counter() - began) / 100)
    return statistics.median(batches)


def small_model() -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class CpuTimedSnapshot:
    """``nbreplica.snapshot`` that adds up the CPU time its own thread spends in it."""

    def __init__(self) -> None:
        self.cpu_seconds = 0.0

    def __call__(self) -> list[nbreplica.DeviceStats]:
        began = time.thread_time()
        devices = nbreplica.snapshot()
        self.cpu_seconds += time.thread_time() - began
        return devices


def epoch(model: keras.Model, x: np.ndarray, y: np.ndarray,
          sampled: bool) -> tuple[float, float, float]:
    """One epoch: samples per second, device samples per second, and the sampler's
    share of the process's CPU time."""
    source = CpuTimedSnapshot()
    sampler = nbreplica.Sampler(interval=1 / SAMPLER_HZ, source=source)
    if sampled:
        sampler.start()
    began, cpu_began = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    sampler.stop()
    return len(x) / seconds, sampler.sample_count / seconds, source.cpu_seconds / cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="pairs of epochs to time")
    parser.add_argument("--rows", type=int, default=25_000, help="training rows per epoch")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 64), dtype=np.float32)
    y = rng.integers(0, 10, args.rows)

    with fake_nvml(*plausible_gpus(GPUS)):
        per_sample = sample_seconds()
        print(f"one sample of {GPUS} devices through pynvml + fake driver: "
              f"{per_sample * 1e6:.0f} us (median)")
        print(f"  at {SAMPLER_HZ} Hz that is {per_sample * SAMPLER_HZ * 100:.2f}% of one core")

        model = small_model()
        epoch(model, x, y, sampled=False)  # warm-up: tracing and allocation
        plain, sampled, rates, cpu_shares = [], [], [], []
        for repeat in range(args.repeats):
            for with_sampler in ((False, True) if repeat % 2 == 0 else (True, False)):
                throughput, rate, cpu_share = epoch(model, x, y, with_sampler)
                (sampled if with_sampler else plain).append(throughput)
                if with_sampler:
                    rates.append(rate)
                    cpu_shares.append(cpu_share)

    base, with_sampler = statistics.median(plain), statistics.median(sampled)
    # Neighbouring epochs share the machine's load, so the ratio within each pair is
    # the steadier figure on a shared box.
    ratio = statistics.median(s / p for p, s in zip(plain, sampled))
    print(f"training throughput, {args.repeats} interleaved pairs of {args.rows:,}-row epochs:")
    print(f"  without sampler:   {base:,.0f} samples/s median "
          f"(range {min(plain):,.0f}-{max(plain):,.0f})")
    print(f"  with {SAMPLER_HZ} Hz sampler: {with_sampler:,.0f} samples/s median "
          f"(range {min(sampled):,.0f}-{max(sampled):,.0f}); "
          f"{statistics.median(rates):.1f} device samples/s taken")
    print(f"  ratio with/without: {ratio:.4f} (median over pairs; ratio of medians "
          f"{with_sampler / base:.4f}) -> sampler cost {100 * (1 - ratio):+.2f}% of "
          "throughput (target < 1%)")
    print(f"  sampler thread's share of the process's CPU time while training: "
          f"{100 * statistics.median(cpu_shares):.2f}% (median)")


if __name__ == "__main__":
    main()

"""What ``nbreplica.GpuMonitor`` costs the training it watches.

Training throughput of a small Keras model (plain ``model.fit`` on CPU, the model of
``bench_sampler.py``) with a 10 Hz monitor of 8 simulated GPUs writing TensorBoard
event files (and, with ``--mlflow``, a local SQLite MLflow run too) versus without,
interleaved in one run (the order alternates each repeat), as the median ratio within
pairs; plus the CPU time of the monitor's thread (its NVML reads, means and writes) as a
share of the process's.

Run: ``python benchmarks/bench_gpu_monitor.py [--repeats 10] [--rows 25000] [--mlflow]``
(about two minutes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from bench_sampler import small_model  # starts TensorFlow quietly, on the CPU

import numpy as np  # noqa: E402

import nbreplica  # noqa: E402
from nbreplica.testing import fake_nvml, plausible_gpus  # noqa: E402
from nbreplica.tracking import monitoring  # noqa: E402

GPUS = 8


class ThreadTime:
    """Adds up the CPU time the monitor's thread spends in its samples."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._tick = monitoring.Monitoring._tick

    def __call__(self, owner: monitoring.Monitoring) -> list:
        began = time.thread_time()
        devices = self._tick(owner)
        self.seconds += time.thread_time() - began
        return devices


def epoch(model, x, y, monitor: nbreplica.GpuMonitor | None) -> tuple[float, float]:
    """One epoch: samples per second, and the monitor thread's share of the CPU time."""
    clock = ThreadTime()
    monitoring.Monitoring._tick = lambda owner: clock(owner)  # type: ignore[method-assign]
    began, cpu_began = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0,
              callbacks=[] if monitor is None else [monitor])
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    monitoring.Monitoring._tick = clock._tick  # type: ignore[method-assign]
    return len(x) / seconds, clock.seconds / cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="pairs of epochs to time")
    parser.add_argument("--rows", type=int, default=25_000, help="training rows per epoch")
    parser.add_argument("--mlflow", action="store_true",
                        help="log to a SQLite MLflow store in a temporary folder too")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 64), dtype=np.float32)
    y = rng.integers(0, 10, args.rows)
    with tempfile.TemporaryDirectory() as folder, fake_nvml(*plausible_gpus(GPUS)):
        if args.mlflow:
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        monitor = nbreplica.GpuMonitor(folder, mlflow=args.mlflow, gpus=range(GPUS))
        model = small_model()
        epoch(model, x, y, monitor)  # warm-up: tracing, allocation, the MLflow store
        pairs, shares = [], []
        for repeat in range(args.repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            figures = {watched: epoch(model, x, y, monitor if watched else None)
                       for watched in order}
            pairs.append((figures[False][0], figures[True][0]))
            shares.append(figures[True][1])
    ratio = statistics.median(watched / plain for plain, watched in pairs)
    print(f"training throughput, {args.repeats} interleaved pairs of {args.rows:,}-row epochs, "
          f"monitor of {GPUS} simulated GPUs at 10 Hz "
          f"({'event files and MLflow' if args.mlflow else 'event files'}):")
    print(f"  without monitor: {statistics.median(p for p, _ in pairs):,.0f} samples/s median")
    print(f"  with monitor:    {statistics.median(w for _, w in pairs):,.0f} samples/s median")
    print(f"  ratio with/without: {ratio:.4f} (median over pairs) -> monitor cost "
          f"{100 * (1 - ratio):+.2f}% of throughput")
    print(f"  monitor thread's share of the process's CPU time while training: "
          f"{100 * statistics.median(shares):.2f}% (median)")


if __name__ == "__main__":
    main()

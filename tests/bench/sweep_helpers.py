"""Tiny models and data for the sweep tests (a unique module name: no clash with other
test directories' helpers)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from nbreplica.gpus.available import Accelerator
from nbreplica.bench.store import RunRecord

FEATURES = 8

#: Stand-in devices for points that are recorded or planned, never run.
GPUS = tuple(Accelerator(i, f"Test GPU {i}", f"/device:GPU:{i}", emulated=False)
             for i in range(4))


def tiny_model(name: str = "tiny") -> keras.Model:
    """A compiled two-layer MLP, small enough that a sweep point takes a second."""
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3),
    ], name=name)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def tiny_data(samples: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((samples, FEATURES), dtype=np.float32),
            rng.integers(0, 3, size=samples))


#: Few, short steps and a fixed number of repeats: the tests check behaviour and
#: arithmetic, not speed.
QUICK = dict(steps=3, warmup_steps=1, progress=False, target_ci=None)


def stored_runs(throughputs: dict[tuple[str, int], list[float]], *, steps: int,
                step_cv: float, batch: int = 64, sweep_id: str = "s1",
                name: str = "synthetic", target_ci: float | None = None) -> pd.DataFrame:
    """Runs as the results store holds them, from known throughputs: one list of
    samples/s per (strategy, device count), one value per repeat; the baseline
    (``("single", 1)``) must be among them. Every repeat timed ``steps`` steps whose
    durations spread by ``step_cv`` of their mean; ``target_ci`` is an adaptive
    sweep's target."""
    baselines = throughputs[("single", 1)]
    records = [
        RunRecord(
            sweep_id=sweep_id, sweep_name=name, model="mlp", params=100,
            strategy=strategy, scaling="strong", devices=devices, repeat=repeat,
            global_batch_size=batch, per_device_batch_size=batch / devices, steps=steps,
            warmup_steps=1, first_step_s=0.5, samples_per_s=rate,
            step_time_p50_s=batch / rate, step_time_p90_s=1.1 * batch / rate,
            step_time_sd_s=step_cv * batch / rate,
            speedup=rate / baselines[repeat - 1],
            efficiency=rate / baselines[repeat - 1] / devices,
            peak_memory_bytes=None, mean_utilization=None, device_metrics="{}",
            device_names="Test GPU", emulated=False, host="box",
            tensorflow_version="2.21.0", keras_version="3.15.1",
            timestamp="2025-01-01T00:00:00+00:00", target_ci=target_ci,
        )
        for (strategy, devices), rates in throughputs.items()
        for repeat, rate in enumerate(rates, start=1)
    ]
    return pd.DataFrame([dataclasses.asdict(record) for record in records])


#: Steady scaling over 1, 2 and 4 devices, 3 repeats each.
STEADY = {("single", 1): [1000.0, 1010.0, 990.0], ("split", 2): [1800.0, 1790.0, 1820.0],
          ("split", 4): [3000.0, 3100.0, 2950.0]}

"""Measuring one sweep point: build a fresh model for a strategy, train, time the steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from nbreplica._errors import SweepError
from nbreplica.gpus.available import Accelerator
from nbreplica.bench.data import SweepData
from nbreplica.bench.step_timer import Call, StepTimer
from nbreplica.bench.timing import StepTiming, step_figures
from nbreplica.devices import Sampler
from nbreplica.replicator.model import ReplicatedModel
from nbreplica.strategy.names import MULTIWORKER, WORKERS_LABEL
from nbreplica.strategy.placements import placement_for
from nbreplica.strategy.workers import WorkerProcess

ModelFn = Callable[[], keras.Model]


@dataclass(frozen=True)
class Point:
    """One measurement of a sweep: a strategy on some devices, in one repeat."""

    strategy: str
    devices: tuple[Accelerator, ...] | tuple[WorkerProcess, ...]
    repeat: int
    global_batch_size: int | None
    """``None`` until a run tells it (a cell trains with its own batch size)."""

    def describe(self) -> str:
        """Short human-readable label, e.g. ``"split on 4 devices, repeat 2"`` or
        ``"multiworker on 2 workers on one machine, repeat 1"``."""
        count = len(self.devices)
        if self.strategy == MULTIWORKER:
            noun = WORKERS_LABEL.replace("workers", "worker") if count == 1 else WORKERS_LABEL
        else:
            noun = "device" if count == 1 else "devices"
        return f"{self.strategy} on {count} {noun}, repeat {self.repeat}"


@dataclass(frozen=True)
class Measurement(StepTiming):
    """What one point measured: its timing, and its devices' samples and counters."""

    samples: pd.DataFrame
    peak_memory_bytes: dict[int, float]
    mean_utilization: dict[int, float]
    split: str | None = None
    """How each batch was split (``ReplicatedModel.split``); ``None`` unsplit."""


@dataclass(frozen=True)
class PointSettings:
    """How every point of a sweep trains: step counts and strategy options."""

    steps: int
    warmup_steps: int
    replicate_options: Mapping[str, Any]
    cross_device_ops: tf.distribute.CrossDeviceOps | None
    sample_interval: float
    clock_origin: float
    """``time.monotonic()`` when the sweep started: device samples are timed from it."""


def measure_point(
    point: Point, model_fn: ModelFn, data: SweepData, settings: PointSettings
) -> Measurement:
    """Build a fresh model for ``point``, train it, and time the steady-state steps.

    The first ``settings.warmup_steps`` steps (tracing and compilation included) are
    left out of the throughput and step-time figures; the first call's time is kept
    as ``first_step_s``. The devices are sampled (memory, utilization) while the model
    trains.
    """
    strategy = placement_for(point.strategy, point.devices,
                             replicate_options=settings.replicate_options,
                             cross_device_ops=settings.cross_device_ops)
    timer = StepTimer()
    sampler = Sampler(interval=settings.sample_interval)
    # The baseline's device scope stays open for its whole training.
    with strategy.scope():
        template = _build(model_fn, point)
        model = strategy.prepare(template)
        sampling_offset = time.monotonic() - settings.clock_origin
        with sampler:
            model.fit(
                data.batches(point.global_batch_size),
                epochs=1,
                steps_per_epoch=settings.warmup_steps + settings.steps,
                shuffle=False,
                verbose=0,
                callbacks=[timer],
            )
    first_step_s, step_times = _step_times(timer.calls, settings)
    indices = [device.index for device in point.devices]
    samples = sampler.to_frame()
    samples["time"] += sampling_offset
    return Measurement(
        model=template.name,
        params=int(template.count_params()),
        first_step_s=first_step_s,
        samples_per_s=point.global_batch_size * len(step_times) / float(np.sum(step_times)),
        **step_figures(step_times),
        samples=samples,
        peak_memory_bytes=_for_devices(sampler.peak_memory(), indices),
        mean_utilization=_for_devices(sampler.mean_utilization(), indices),
        split=model.split if isinstance(model, ReplicatedModel) else None,
    )


def _step_times(calls: list[Call], settings: PointSettings) -> tuple[float, np.ndarray]:
    """First call's duration, and the per-step duration of every call after warm-up
    (from the end of the call before it: what a step costs in a long training)."""
    per_step = []
    for previous, call in zip(calls, calls[1:]):
        if previous.first_step + previous.steps >= settings.warmup_steps:
            per_step.extend([(call.ended - previous.ended) / call.steps] * call.steps)
    if not per_step:
        raise SweepError(
            "No step ran after the warm-up, so nothing was measured: the model runs "
            f"{calls[0].steps} steps per call (steps_per_execution). Raise steps "
            f"to a few calls' worth. Received: steps={settings.steps}, "
            f"warmup_steps={settings.warmup_steps}"
        )
    return calls[0].seconds, np.asarray(per_step)


def _for_devices(values: Mapping[int, float | None], indices: list[int]) -> dict[int, float]:
    """The known values of the devices a point used (emulated devices report none)."""
    return {index: float(values[index]) for index in indices if values.get(index) is not None}


def _build(model_fn: ModelFn, point: Point) -> keras.Model:
    try:
        model = model_fn()
    except Exception as exc:
        raise SweepError(
            f"model_fn raised {type(exc).__name__} while building the model for "
            f"{point.describe()}: {exc}. Received: model_fn={model_fn!r}"
        ) from exc
    if not isinstance(model, keras.Model) or not getattr(model, "compiled", False):
        raise SweepError(
            "model_fn must build and return a compiled keras.Model (call "
            f"model.compile(...) inside it). Received: model_fn returned {model!r}"
        )
    # Every point runs without XLA, so speedups measure parallelism alone: replicate
    # cannot use XLA (it ignores device placement), and under XLA MirroredStrategy
    # ignores cross_device_ops and uses the collectives that collide across sizes.
    model.jit_compile = False
    return model

"""Measuring one sweep point: build a fresh model for a strategy, train, time the steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from nbreplica._errors import SweepError
from nbreplica.accelerators import Accelerator
from nbreplica.bench.data import SweepData
from nbreplica.bench.stats import spread
from nbreplica.bench.strategies import BASELINE, MULTIWORKER, WORKERS_LABEL
from nbreplica.devices import Sampler
from nbreplica.replicator.api import replicate

ModelFn = Callable[[], keras.Model]


@dataclass(frozen=True)
class Point:
    """One measurement of a sweep: a strategy on some devices, in one repeat."""

    strategy: str
    devices: tuple[Accelerator, ...]
    repeat: int
    global_batch_size: int

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
class Measurement:
    """What one point measured. Times in seconds; throughput in samples per second."""

    model_name: str
    params: int
    first_step_s: float
    samples_per_s: float
    step_time_p50_s: float
    step_time_p90_s: float
    step_time_sd_s: float
    """Standard deviation of the timed steps' durations; NaN with one timed step."""
    samples: pd.DataFrame
    peak_memory_bytes: dict[int, float]
    mean_utilization: dict[int, float]


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


class _StepTimer(keras.callbacks.Callback):
    """Wall-clock time at the end of every train-function call.

    A callback that is not ``async_safe`` makes Keras convert the step's logs to
    Python numbers before calling it, which waits for the step to finish, so the
    times are those of completed steps, not of dispatched ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started = 0.0
        self.ends: list[tuple[int, float]] = []

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if not self.started:
            self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        # ``batch`` is the index of the last step the call ran (several steps per call
        # when the model was compiled with steps_per_execution > 1).
        self.ends.append((batch, time.perf_counter()))


def measure_point(
    point: Point, model_fn: ModelFn, data: SweepData, settings: PointSettings
) -> Measurement:
    """Build a fresh model for ``point``, train it, and time the steady-state steps.

    The first ``settings.warmup_steps`` steps (tracing and compilation included) are
    left out of the throughput and step-time figures; the first call's time is kept
    as ``first_step_s``. The devices are sampled (memory, utilization) while the model
    trains.
    """
    with _placed_model(point, model_fn, settings) as (model, template):
        timer = _StepTimer()
        sampler = Sampler(interval=settings.sample_interval)
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
    first_step_s, step_times = _step_times(timer, settings)
    indices = [device.index for device in point.devices]
    samples = sampler.to_frame()
    samples["time"] += sampling_offset
    return Measurement(
        model_name=template.name,
        params=int(template.count_params()),
        first_step_s=first_step_s,
        samples_per_s=point.global_batch_size * len(step_times) / float(np.sum(step_times)),
        step_time_p50_s=float(np.percentile(step_times, 50)),
        step_time_p90_s=float(np.percentile(step_times, 90)),
        step_time_sd_s=spread(step_times),
        samples=samples,
        peak_memory_bytes=_for_devices(sampler.peak_memory(), indices),
        mean_utilization=_for_devices(sampler.mean_utilization(), indices),
    )


def _step_times(timer: _StepTimer, settings: PointSettings) -> tuple[float, np.ndarray]:
    """First call's duration, and the per-step duration of every call after warm-up."""
    first_step_s = timer.ends[0][1] - timer.started
    per_step = []
    for (previous_step, previous_end), (step, end) in zip(timer.ends, timer.ends[1:]):
        if previous_step + 1 >= settings.warmup_steps:
            steps_in_call = step - previous_step
            per_step.extend([(end - previous_end) / steps_in_call] * steps_in_call)
    if not per_step:
        raise SweepError(
            "No step ran after the warm-up, so nothing was measured: the model runs "
            f"{timer.ends[0][0] + 1} steps per call (steps_per_execution). Raise steps "
            f"to a few calls' worth. Received: steps={settings.steps}, "
            f"warmup_steps={settings.warmup_steps}"
        )
    return first_step_s, np.asarray(per_step)


def _for_devices(values: Mapping[int, float | None], indices: list[int]) -> dict[int, float]:
    """The known values of the devices a point used (emulated devices report none)."""
    return {index: float(values[index]) for index in indices if values.get(index) is not None}


@contextmanager
def _placed_model(
    point: Point, model_fn: ModelFn, settings: PointSettings
) -> Iterator[tuple[keras.Model, keras.Model]]:
    """Yield (model to train, the model ``model_fn`` built) placed for the strategy.

    The model must be trained inside the context: the baseline's device scope stays
    open for its whole training.
    """
    if point.strategy == BASELINE:
        with tf.device(point.devices[0].device):
            template = _build(model_fn, point)
            yield template, template
    elif point.strategy == "split":
        template = _build(model_fn, point)
        replicated = replicate(
            template,
            gpus=[device.index for device in point.devices],
            **settings.replicate_options,
        )
        replicated.compile_from_config(template.get_compile_config())
        yield replicated, template
    elif point.strategy == "mirrored":
        strategy = mirrored_strategy(point.devices, settings.cross_device_ops)
        with strategy.scope():
            template = _build(model_fn, point)
        yield template, template
    else:  # multiworker: a worker process, inside its strategy's scope already
        template = _build(model_fn, point)
        yield template, template


def mirrored_strategy(
    devices: Sequence[Accelerator],
    cross_device_ops: tf.distribute.CrossDeviceOps | None = None,
) -> tf.distribute.MirroredStrategy:
    """A ``MirroredStrategy`` over ``devices`` that coexists with others in one process.

    ``cross_device_ops`` defaults to ``tf.distribute.ReductionToOneDevice()``.
    Collective all-reduce (the default on CPUs and under XLA) numbers its groups from 1
    in every strategy object, so a second strategy over a different device count in
    the same process joins a group of the wrong size and aborts. Reduction to one
    device uses no collective groups. Under XLA the strategy ignores
    ``cross_device_ops`` and uses collectives again: train its models with
    ``jit_compile=False``.
    """
    return tf.distribute.MirroredStrategy(
        [device.device for device in devices],
        cross_device_ops=cross_device_ops or tf.distribute.ReductionToOneDevice(),
    )


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

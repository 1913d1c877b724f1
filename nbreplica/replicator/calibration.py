"""Calibrating ``shares="auto"``: time the template alone on each device.

Each device runs a few steps of the template's forward and backward pass (the
gradient of the sum of its outputs) on one synthetic batch, after two untimed steps
(the first traces the step, once for all devices). The timed steps take turns, one
step per device per round, so that a drift of the machine hits every device alike,
and a device's time per step is the fastest of its rounds (other work on the machine
only ever adds time). Nothing is trained: no optimizer runs, and the
non-trainable state the steps change (moving averages, random seeds) is put back
afterwards. A device's speed is the inverse of its time per step.

The clock is an argument (:data:`Clock`), so that what the calibration makes of
measured times can be tested without devices of different speeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nbreplica.gpus.available import Accelerator

#: Returns seconds; only differences between two calls count.
Clock = Callable[[], float]

#: Rows of the synthetic batch each device runs, and timed steps per device.
CALIBRATION_ROWS = 32
CALIBRATION_STEPS = 10


class CannotCalibrate(ValueError):
    """The template's inputs cannot be made up (the message says why)."""


def calibrate(template: keras.Model, accelerators: Sequence[Accelerator], *,
              clock: Clock = time.perf_counter, steps: int = CALIBRATION_STEPS,
              rows: int = CALIBRATION_ROWS) -> list[float]:
    """Seconds per step of ``template`` on each of ``accelerators``, in their order.

    Prints one progress line while it runs (and its end: how long it took).

    Raises:
        CannotCalibrate: the template has no known inputs to make a batch from (a
            subclassed model, string or ragged inputs, unknown non-batch axes), or
            failed on the batch made up for it.
    """
    batch = synthetic_batch(template, rows)
    state = [(variable, tf.identity(variable.value))
             for variable in template.non_trainable_variables]
    print(f"Calibrating shares='auto': {steps} steps of {template.name!r} on {rows} rows "
          f"on each of {len(accelerators)} devices ...", end="", flush=True)
    started = time.perf_counter()
    try:
        seconds = _seconds_per_step(template, batch, accelerators, steps, clock)
    except (TypeError, ValueError, tf.errors.OpError) as error:  # the made-up batch
        print(" failed", flush=True)
        raise CannotCalibrate(f"model {template.name!r} raised {type(error).__name__} on "
                              f"a made-up batch: {error}") from error
    finally:
        for variable, value in state:
            variable.assign(value)
    print(f" done in {time.perf_counter() - started:.1f} s", flush=True)
    return seconds


def synthetic_batch(template: keras.Model, rows: int) -> Any:
    """A batch of ``rows`` rows for ``template``'s inputs: normal noise for floating
    inputs, zeros (a valid index of any lookup) for integer ones.

    Raises:
        CannotCalibrate: the inputs are unknown or cannot be made up.
    """
    inputs = _inputs_of(template)
    if inputs is None:
        raise CannotCalibrate(f"model {template.name!r} has no known inputs (subclassed)")
    rng = np.random.default_rng(0)

    def made_up(spec: Any) -> np.ndarray:
        dtype = tf.as_dtype(spec.dtype)
        shape = tuple(spec.shape[1:])
        if getattr(spec, "sparse", False) or getattr(spec, "ragged", False) \
                or any(size is None for size in shape) \
                or not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
            raise CannotCalibrate(
                f"model {template.name!r} has an input ({spec.name!r}: shape {spec.shape}, "
                f"{dtype.name}) a batch cannot be made up for")
        if dtype.is_floating:
            return rng.standard_normal((rows, *shape)).astype(dtype.as_numpy_dtype)
        return np.zeros((rows, *shape), dtype.as_numpy_dtype)

    return keras.tree.map_structure(made_up, inputs)


def _inputs_of(template: keras.Model) -> Any:
    """The template's symbolic inputs, in the structure it is called with (a
    Sequential model knows them only as ``inputs``); ``None`` when unknown."""
    for read in (lambda: template.input, lambda: template.inputs):
        try:
            inputs = read()
        except (AttributeError, ValueError):
            continue
        if isinstance(inputs, list):
            if inputs:
                return inputs[0] if len(inputs) == 1 else inputs
        elif inputs is not None:
            return inputs
    return None


def _seconds_per_step(template: keras.Model, batch: Any,
                      accelerators: Sequence[Accelerator], steps: int,
                      clock: Clock) -> list[float]:
    """Per device, the fastest of ``steps`` timed steps (rounds in turn)."""
    # Traced once: called under a device scope, the whole step runs on that device.
    step = tf.function(lambda: _gradient_size(template, batch))
    for accelerator in accelerators:
        with tf.device(accelerator.device):
            for _ in range(2):  # the first call traces: both untimed
                step().numpy()
    times: list[list[float]] = [[] for _ in accelerators]
    for _ in range(steps):
        for device_times, accelerator in zip(times, accelerators):
            with tf.device(accelerator.device):
                started = clock()
                step().numpy()  # .numpy() waits for the device
                device_times.append(clock() - started)
    return [min(device_times) for device_times in times]


def _gradient_size(template: keras.Model, batch: Any) -> tf.Tensor:
    """The squared norm of the gradient of the sum of ``template``'s floating outputs:
    one forward and one backward pass, reduced to a scalar to wait for."""
    with tf.GradientTape() as tape:
        outputs = [tf.reduce_sum(tf.cast(output, tf.float32))
                   for output in tf.nest.flatten(template(batch, training=True))
                   if output.dtype.is_floating]
        total = tf.add_n(outputs) if outputs else tf.constant(0.0)
    gradients = tape.gradient(total, template.trainable_variables)
    sizes = [tf.reduce_sum(tf.square(tf.cast(
        gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient, tf.float32)))
        for gradient in gradients if gradient is not None]
    return tf.add_n([total, *sizes])

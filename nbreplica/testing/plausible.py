"""A believable fake machine: ``NBREPLICA_FAKE_NVML=N`` gives N of these GPUs."""

from __future__ import annotations

import math
from collections.abc import Callable

from nbreplica.devices.records import GIB
from nbreplica.testing.driver import FakeDriver
from nbreplica.testing.gpus import FakeGpu, FakeProcess

_IDLE_MEMORY = 0.45 * GIB
_BUSY_MEMORY = 28 * GIB


def _wave(mean: float, amplitude: float, period: float, phase: float) -> Callable[[float], float]:
    return lambda t: mean + amplitude * math.sin(2 * math.pi * t / period + phase)


def plausible_gpus(count: int) -> list[FakeGpu]:
    """``count`` A100-like GPUs whose values drift smoothly over time.

    Every third GPU (indices 1, 4, 7, ...) is busy: another process holds 28 GiB on
    it and keeps it around 90% utilized; the rest are idle.
    """
    gpus = []
    for index in range(count):
        phase = index * 0.9
        busy = index % 3 == 1
        utilization = _wave(90, 6, 7.0, phase) if busy else _wave(2, 2, 11.0, phase)
        gpus.append(FakeGpu(
            memory_used=_wave((_BUSY_MEMORY if busy else 0) + _IDLE_MEMORY,
                              0.6 * GIB if busy else 0.05 * GIB, 13.0, phase),
            utilization_gpu=utilization,
            utilization_memory=lambda t, u=utilization: 0.55 * u(t),
            temperature=lambda t, u=utilization, p=phase: (
                33 + 0.4 * u(t) + 1.5 * math.sin(t / 5 + p)),
            power_draw=lambda t, u=utilization: 58 + 3.1 * u(t),
            processes=(FakeProcess(31400 + index, "python3", int(_BUSY_MEMORY)),) if busy else (),
        ))
    return gpus


def plausible_driver(count: int) -> FakeDriver:
    """A :class:`FakeDriver` (not installed) with :func:`plausible_gpus` ``(count)``."""
    return FakeDriver(*plausible_gpus(count))

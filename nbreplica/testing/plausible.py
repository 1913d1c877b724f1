"""Believable fake machines: ``NBREPLICA_FAKE_NVML=N`` gives N A100s
(:func:`plausible_gpus`), ``NBREPLICA_FAKE_NVML=mixed`` a machine of two kinds of GPU
(:func:`mixed_gpus`)."""

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


#: ``NBREPLICA_FAKE_NVML=mixed``: the simulated machine of :func:`mixed_gpus`.
MIXED = "mixed"


def mixed_gpus() -> list[FakeGpu]:
    """A lab server of two kinds of GPU: two A100 80GB (6912 CUDA cores, 1410 MHz)
    and two T4 (2560 CUDA cores, 1590 MHz, 15 GiB), each with other memory free.

    Free memory: 72, 50, 12 and 9 GiB (another process holds 30 GiB of GPU 1 and
    5.5 GiB of GPU 3); the values do not drift.
    """
    def a100(used: float, **kwargs: object) -> FakeGpu:
        return FakeGpu(name="NVIDIA A100-SXM4-80GB", memory_total=80 * GIB,
                       memory_used=used * GIB, power_limit=400.0, **kwargs)

    def t4(used: float, **kwargs: object) -> FakeGpu:
        return FakeGpu(name="Tesla T4", memory_total=15 * GIB, memory_used=used * GIB,
                       power_draw=27.0, power_limit=70.0, cuda_cores=2560,
                       max_sm_clock_mhz=1590, **kwargs)

    return [
        a100(8),
        a100(30, utilization_gpu=85, processes=(FakeProcess(31401, "python3", 30 * GIB),)),
        t4(3),
        t4(6, utilization_gpu=40, processes=(FakeProcess(31403, "python3", int(5.5 * GIB)),)),
    ]


def plausible_driver(count: int | str) -> FakeDriver:
    """A :class:`FakeDriver` (not installed) with :func:`plausible_gpus` ``(count)``,
    or with :func:`mixed_gpus` for ``"mixed"``."""
    return FakeDriver(*(mixed_gpus() if count == MIXED else plausible_gpus(count)))

"""Scripted GPUs for the fake NVML driver: what each one reports, and when it fails."""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from nbreplica._checks import is_whole
from nbreplica.devices.records import GIB

#: A value that may change over time: a constant, a sequence (one entry per ``step``
#: seconds of driver time, the last entry held) or a callable of elapsed seconds.
Metric = float | Sequence[float] | Callable[[float], float]

#: The names accepted by ``FakeGpu(unsupported=..., forbidden=...)``: one per NVML
#: query, so ``"memory"`` covers used, free and total together.
QUERIES = frozenset(
    {"name", "uuid", "memory", "utilization", "temperature", "power_draw", "power_limit",
     "processes", "cores", "clocks"}
)


@dataclass(frozen=True)
class FakeProcess:
    """A process the fake driver reports on a GPU (``gpu_memory`` in bytes; ``None``
    reports "not available", as drivers do under Windows WDDM)."""

    pid: int
    name: str = "python"
    gpu_memory: int | None = None


def this_process(gpu_memory: int | None = None) -> FakeProcess:
    """The current process as a GPU user, as NVML lists a kernel whose TensorFlow
    holds memory on a device (its PID, its executable, ``gpu_memory`` bytes)."""
    return FakeProcess(os.getpid(), sys.executable, gpu_memory)


@dataclass(frozen=True)
class FakeGpu:
    """One GPU of the fake driver.

    ``cuda_cores`` and ``max_sm_clock_mhz`` (MHz) describe the chip, as
    ``nvmlDeviceGetNumGpuCores`` and ``nvmlDeviceGetMaxClockInfo`` report them (the
    defaults: an A100's).

    Time-varying fields (``memory_used``, ``utilization_gpu``, ``utilization_memory``,
    ``temperature``, ``power_draw``) take a :data:`Metric`; ``processes`` takes a
    sequence of :class:`FakeProcess` or a callable of elapsed seconds returning one.

    Failures:
        unsupported: queries (see :data:`QUERIES`) answered "Not Supported".
        forbidden: queries answered "Insufficient Permissions".
        lost_at: elapsed seconds from which every query on this GPU answers
            "GPU is lost" (``None``: never).
    """

    name: str = "NVIDIA A100-SXM4-40GB"
    memory_total: int = 40 * GIB
    memory_used: Metric = 0
    utilization_gpu: Metric = 0
    utilization_memory: Metric = 0
    temperature: Metric = 35
    power_draw: Metric = 60.0
    power_limit: float = 400.0
    processes: Sequence[FakeProcess] | Callable[[float], Sequence[FakeProcess]] = ()
    uuid: str | None = None
    unsupported: Collection[str] = frozenset()
    forbidden: Collection[str] = frozenset()
    lost_at: float | None = None
    cuda_cores: int = 6912
    max_sm_clock_mhz: int = 1410

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string. Received: name={self.name!r}")
        if not is_whole(self.memory_total) or self.memory_total <= 0:
            raise ValueError(
                "memory_total must be a positive number of bytes. "
                f"Received: memory_total={self.memory_total!r}"
            )
        for option in ("cuda_cores", "max_sm_clock_mhz"):
            if not is_whole(getattr(self, option)) or getattr(self, option) <= 0:
                raise ValueError(f"{option} must be a whole number > 0. "
                                 f"Received: {option}={getattr(self, option)!r}")
        for option in ("unsupported", "forbidden"):
            names = getattr(self, option)
            if isinstance(names, str) or not set(names) <= QUERIES:
                raise ValueError(
                    f"{option} must be a collection of query names from "
                    f"{sorted(QUERIES)}. Received: {option}={names!r}"
                )
            object.__setattr__(self, option, frozenset(names))
        if self.lost_at is not None and (
            not isinstance(self.lost_at, numbers.Real) or self.lost_at < 0
        ):
            raise ValueError(
                "lost_at must be None or a number of seconds >= 0. "
                f"Received: lost_at={self.lost_at!r}"
            )


def value_at(metric: Metric, elapsed: float, step: float) -> float:
    """The value ``metric`` has ``elapsed`` seconds after the driver started."""
    if callable(metric):
        return metric(elapsed)
    if isinstance(metric, Sequence):
        return metric[min(int(elapsed // step), len(metric) - 1)]
    return metric


def processes_at(gpu: FakeGpu, elapsed: float) -> Sequence[FakeProcess]:
    """The processes ``gpu`` reports ``elapsed`` seconds after the driver started."""
    if callable(gpu.processes):
        return gpu.processes(elapsed)
    return gpu.processes

"""Plain records of what one device reports at one moment (a leaf module)."""

from __future__ import annotations

import os
from dataclasses import dataclass

GIB = 1024**3

#: The numeric fields of :class:`DeviceStats`, in the order tables show them.
NUMERIC_METRICS: tuple[str, ...] = (
    "memory_used",
    "memory_free",
    "memory_total",
    "utilization_gpu",
    "utilization_memory",
    "temperature",
    "power_draw",
    "power_limit",
)


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process holding a GPU context: its id, executable name and GPU memory.

    ``name`` and ``gpu_memory`` (bytes) are ``None`` when the driver does not say.
    The pid is the one the driver sees; inside a container it can differ from the
    pid the container's processes see.
    """

    pid: int
    name: str | None
    gpu_memory: int | None


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """One GPU at one moment, as :func:`nbreplica.snapshot` reports it.

    Every metric the device or driver does not report is ``None``; nothing is
    estimated. Units: bytes for memory, percent for utilization, degrees Celsius for
    temperature, watts for power.

    Attributes:
        index: the NVML device index (or the emulated GPU's index).
        name, uuid: as the driver reports them.
        memory_used, memory_free, memory_total: device memory in bytes.
        utilization_gpu: percent of the last sample period a kernel was running.
        utilization_memory: percent of that period device memory was read or written.
        temperature: GPU core temperature in degrees Celsius.
        power_draw, power_limit: current draw and enforced limit in watts.
        processes: the processes using the device, or ``None`` when the driver does
            not tell (e.g. no permission). An empty tuple means "none".
        emulated: a TensorFlow logical CPU device standing in for a GPU: only the
            index and name are known.
        simulated: the values come from the fake driver in :mod:`nbreplica.testing`.
        lost: the driver reported the GPU as lost (fallen off the bus); no metrics.
        cuda_cores, max_sm_clock_mhz: what NVML says the GPU is made of (its CUDA
            cores, its highest SM clock in MHz): their product is the speed
            ``replicate(model, shares="auto")`` falls back on.
    """

    index: int
    name: str | None
    uuid: str | None = None
    memory_used: int | None = None
    memory_free: int | None = None
    memory_total: int | None = None
    utilization_gpu: int | None = None
    utilization_memory: int | None = None
    temperature: int | None = None
    power_draw: float | None = None
    power_limit: float | None = None
    processes: tuple[ProcessInfo, ...] | None = None
    emulated: bool = False
    simulated: bool = False
    lost: bool = False
    cuda_cores: int | None = None
    max_sm_clock_mhz: int | None = None

    def other_processes(self) -> tuple[ProcessInfo, ...] | None:
        """The processes on this device other than the current one (``None``: unknown)."""
        if self.processes is None:
            return None
        own = os.getpid()
        return tuple(process for process in self.processes if process.pid != own)

    def own_process(self) -> ProcessInfo | None:
        """The current process's entry on this device (its PID is in NVML's process
        list: it holds a context and, in ``gpu_memory``, that much memory), or ``None``
        when it does not use the device or the driver does not tell."""
        own = os.getpid()
        return next((process for process in self.processes or () if process.pid == own), None)

    def metrics(self) -> dict[str, float]:
        """The numeric metrics this record knows, by field name (missing ones left out)."""
        values = {}
        for field in NUMERIC_METRICS:
            value = getattr(self, field)
            if value is not None:
                values[field] = value
        return values

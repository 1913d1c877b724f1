"""The one module that talks to NVML (through pynvml).

Every NVML call goes through :func:`query`, which turns "this device or driver cannot
tell" into ``None``. NVML starts on first use, once, whichever thread gets there
first, and shuts down at interpreter exit after in-flight reads finish.
:func:`swap_library` puts another library (the simulated driver of
:mod:`nbreplica.testing`) under pynvml.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pynvml

from nbreplica.devices.records import DeviceStats, ProcessInfo

_DRAIN_TIMEOUT = 5.0  # seconds a shutdown waits for reads in flight
_SIMULATED = " (simulated NVML driver from nbreplica.testing)"
_START_FAILURES = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        "NVIDIA driver not installed (NVML library libnvidia-ml.so.1 not found)",
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: "NVIDIA driver not loaded",
    pynvml.NVML_ERROR_NO_PERMISSION: "no permission to use the NVIDIA driver",
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        "NVIDIA driver and NVML library versions differ (reload the driver or reboot)",
}
_LOST_ERRORS = (pynvml.NVMLError_GpuIsLost, pynvml.NVMLError_ResetRequired)

T = TypeVar("T")


class GpuLost(Exception):
    """The device fell off the bus (raised by :func:`query`; never leaves this package)."""


def query(function: Callable[..., T], *args: Any) -> T | None:
    """Call one pynvml function; any NVML error becomes ``None``.

    Raises:
        GpuLost: the device answered "GPU is lost" or "reset required".
    """
    try:
        return function(*args)
    except _LOST_ERRORS as exc:
        raise GpuLost(str(exc)) from None
    except pynvml.NVMLError:
        return None


@dataclass
class _Session:
    """One NVML init..shutdown span and what it learned once."""

    available: bool
    status: str
    simulated: bool
    count: int = 0
    driver_version: str | None = None
    handles: dict[int, Any] = field(default_factory=dict)
    identities: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    specs: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)


_CLOSED = _Session(available=False, status="NVML was shut down (interpreter exiting)",
                   simulated=False)

_lock = threading.Condition()  # guards everything below
_session: _Session | None = None
_in_flight = 0
_closed = False
_fake = False
_atexit_registered = False


def status() -> str:
    """One line on NVML's state: why it is unavailable, or the driver and GPU count."""
    with _lock:
        return _current_locked().status


def driver_version() -> str | None:
    """The NVIDIA driver version, or ``None`` when NVML is unavailable."""
    with _lock:
        return _current_locked().driver_version


def read_devices(indices: Sequence[int] | None = None) -> list[DeviceStats]:
    """One pass over every NVML device, or over those of ``indices`` that exist (in
    that order); empty when NVML is unavailable."""
    with _reading() as session:
        wanted = range(session.count) if indices is None else [
            index for index in indices if 0 <= index < session.count]
        return [_read_device(session, index) for index in wanted]


def swap_library(library: object | None, *, fake: bool) -> tuple[object | None, bool]:
    """Make pynvml call ``library`` from now on; return the previous ``(library, fake)``.

    ``None`` lets pynvml load the system's ``libnvidia-ml.so.1`` on next use. The
    running NVML session is shut down and the next read starts a new one.
    """
    with _lock:
        return _swap_locked(library, fake)


@contextmanager
def _reading() -> Iterator[_Session]:
    global _in_flight
    with _lock:
        session = _current_locked()
        _in_flight += 1
    try:
        yield session
    finally:
        with _lock:
            _in_flight -= 1
            _lock.notify_all()


def _current_locked() -> _Session:
    global _session
    if _closed:
        return _CLOSED
    if _session is None:
        _session = _start_locked()
    return _session


def _start_locked() -> _Session:
    global _atexit_registered
    suffix = _SIMULATED if _fake else ""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        reason = _START_FAILURES.get(exc.value, f"NVML could not start: {exc}")
        return _Session(available=False, status=reason + suffix, simulated=_fake)
    if not _atexit_registered:
        atexit.register(_shutdown_at_exit)
        _atexit_registered = True
    try:
        count = query(pynvml.nvmlDeviceGetCount) or 0
        version = query(pynvml.nvmlSystemGetDriverVersion)
    except GpuLost as exc:
        return _Session(available=False, status=f"NVML: {exc}{suffix}", simulated=_fake)
    gpus = f"{count} GPU" + ("" if count == 1 else "s")
    return _Session(
        available=True,
        status=f"NVML ready: {gpus}, driver {version or 'unknown'}{suffix}",
        simulated=_fake,
        count=count,
        driver_version=version,
    )


def _swap_locked(library: object | None, fake: bool) -> tuple[object | None, bool]:
    global _fake
    _stop_locked()
    with pynvml.libLoadLock:
        previous = (pynvml.nvmlLib, _fake)
        pynvml.nvmlLib = library
        pynvml._nvmlGetFunctionPointer_cache.clear()
    _fake = fake
    return previous


def _stop_locked() -> None:
    global _session
    drained = _lock.wait_for(lambda: _in_flight == 0, timeout=_DRAIN_TIMEOUT)
    # Shutting down under a read still in flight could free state it is using.
    if drained and _session is not None and _session.available:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    _session = None


def _shutdown_at_exit() -> None:
    global _closed
    with _lock:
        _closed = True
        _stop_locked()


def _read_device(session: _Session, index: int) -> DeviceStats:
    try:
        handle = session.handles.get(index)
        if handle is None:
            handle = query(pynvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:
                return DeviceStats(index, None, simulated=session.simulated)
            session.handles[index] = handle
        identity = session.identities.get(index)
        if identity is None:
            identity = (query(pynvml.nvmlDeviceGetName, handle),
                        query(pynvml.nvmlDeviceGetUUID, handle))
            session.identities[index] = identity
        name, uuid = identity
        specs = session.specs.get(index)
        if specs is None:  # what the GPU is made of does not change
            specs = (query(pynvml.nvmlDeviceGetNumGpuCores, handle),
                     query(pynvml.nvmlDeviceGetMaxClockInfo, handle, pynvml.NVML_CLOCK_SM))
            session.specs[index] = specs
        memory = query(pynvml.nvmlDeviceGetMemoryInfo, handle, pynvml.nvmlMemory_v2)
        if memory is None:  # drivers older than the _v2 call
            memory = query(pynvml.nvmlDeviceGetMemoryInfo, handle)
        utilization = query(pynvml.nvmlDeviceGetUtilizationRates, handle)
        temperature = query(pynvml.nvmlDeviceGetTemperatureV, handle, pynvml.NVML_TEMPERATURE_GPU)
        if temperature is None:  # drivers older than the versioned call
            temperature = query(pynvml.nvmlDeviceGetTemperature, handle,
                                pynvml.NVML_TEMPERATURE_GPU)
        return DeviceStats(
            index=index,
            name=name,
            uuid=uuid,
            memory_used=None if memory is None else memory.used,
            memory_free=None if memory is None else memory.free,
            memory_total=None if memory is None else memory.total,
            utilization_gpu=None if utilization is None else utilization.gpu,
            utilization_memory=None if utilization is None else utilization.memory,
            temperature=temperature,
            power_draw=_watts(query(pynvml.nvmlDeviceGetPowerUsage, handle)),
            power_limit=_watts(query(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)),
            processes=_processes(handle),
            simulated=session.simulated,
            cuda_cores=specs[0],
            max_sm_clock_mhz=specs[1],
        )
    except GpuLost:
        name, uuid = session.identities.get(index, (None, None))
        return DeviceStats(index, name, uuid, simulated=session.simulated, lost=True)


def _watts(milliwatts: int | None) -> float | None:
    return None if milliwatts is None else milliwatts / 1000


def _processes(handle: Any) -> tuple[ProcessInfo, ...] | None:
    compute = query(pynvml.nvmlDeviceGetComputeRunningProcesses_v3, handle)
    graphics = query(pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3, handle)
    if compute is None and graphics is None:
        return None
    memory: dict[int, int | None] = {}
    for info in [*(compute or ()), *(graphics or ())]:
        if memory.get(info.pid) is None:  # a process can hold both kinds of context
            memory[info.pid] = info.usedGpuMemory
    return tuple(
        ProcessInfo(pid, query(pynvml.nvmlSystemGetProcessName, pid), used)
        for pid, used in sorted(memory.items())
    )

"""A fake NVML driver at the C level: pynvml's real binding code runs against it.

pynvml looks every C symbol up with ``getattr(pynvml.nvmlLib, name)``. The driver
builds an object whose attributes are ``ctypes.CFUNCTYPE`` callbacks with the C
signatures, and :meth:`FakeDriver.install` puts it in place of ``libnvidia-ml.so.1``.
Every callback answers with an NVML return code and writes its results through the
pointers it is given, exactly as the C library does.
"""

from __future__ import annotations

import collections
import ctypes
import threading
import time
import types
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from nbreplica._checks import is_number
from nbreplica.devices import nvml
from nbreplica.testing import abi
from nbreplica.testing.gpus import FakeGpu, processes_at, value_at

#: ``FakeDriver(init_error=...)`` values and the return code ``nvmlInit`` gives.
INIT_ERRORS = {
    "library_not_found": abi.ERROR_LIBRARY_NOT_FOUND,
    "driver_not_loaded": abi.ERROR_DRIVER_NOT_LOADED,
    "no_permission": abi.ERROR_NO_PERMISSION,
}

_HANDLE_BASE = 0x6E560000  # device handles are opaque non-null pointers

_P = ctypes.c_void_p
_U = ctypes.c_uint
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "nvmlInitWithFlags": (_U,),
    "nvmlShutdown": (),
    "nvmlSystemGetDriverVersion": (_P, _U),
    "nvmlSystemGetProcessName": (_U, _P, _U),
    "nvmlDeviceGetCount_v2": (_P,),
    "nvmlDeviceGetHandleByIndex_v2": (_U, _P),
    "nvmlDeviceGetName": (_P, _P, _U),
    "nvmlDeviceGetUUID": (_P, _P, _U),
    "nvmlDeviceGetMemoryInfo": (_P, _P),
    "nvmlDeviceGetMemoryInfo_v2": (_P, _P),
    "nvmlDeviceGetUtilizationRates": (_P, _P),
    "nvmlDeviceGetTemperatureV": (_P, _P),
    "nvmlDeviceGetTemperature": (_P, _U, _P),
    "nvmlDeviceGetPowerUsage": (_P, _P),
    "nvmlDeviceGetEnforcedPowerLimit": (_P, _P),
    "nvmlDeviceGetComputeRunningProcesses_v3": (_P, _P, _P),
    "nvmlDeviceGetGraphicsRunningProcesses_v3": (_P, _P, _P),
    "nvmlDeviceGetNumGpuCores": (_P, _P),
    "nvmlDeviceGetMaxClockInfo": (_P, _U, _P),
}

#: The C functions the fake driver exports (``nvmlErrorString`` included).
FUNCTIONS = frozenset(_SIGNATURES) | {"nvmlErrorString"}


class _Return(Exception):
    """Ends a callback early with an NVML return code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class FakeDriver:
    """A scripted NVML driver.

    Args:
        *gpus: the GPUs it reports, in index order.
        driver_version: what ``nvmlSystemGetDriverVersion`` reports.
        init_error: make ``nvmlInit`` fail as when the library is missing
            (``"library_not_found"``), the kernel module is not loaded
            (``"driver_not_loaded"``) or the user may not open the device
            (``"no_permission"``).
        missing_functions: C functions left out, as in an older driver.
        step: seconds each entry of a sequence :data:`~nbreplica.testing.Metric` lasts.
        clock: returns the driver's elapsed time in seconds; by default the seconds
            since :meth:`install`.

    Attributes:
        calls: how often each C function was called.
        callback_errors: Python exceptions raised inside callbacks (each one was
            answered with NVML_ERROR_UNKNOWN); a correct script leaves it empty.
    """

    def __init__(
        self,
        *gpus: FakeGpu,
        driver_version: str = "555.42.06",
        init_error: str | None = None,
        missing_functions: Collection[str] = (),
        step: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        for gpu in gpus:
            if not isinstance(gpu, FakeGpu):
                raise TypeError(f"Every GPU must be a FakeGpu. Received: {gpu!r}")
        if init_error is not None and init_error not in INIT_ERRORS:
            raise ValueError(
                f"init_error must be None or one of {sorted(INIT_ERRORS)}. "
                f"Received: init_error={init_error!r}"
            )
        if isinstance(missing_functions, str) or not set(missing_functions) <= FUNCTIONS:
            raise ValueError(
                "missing_functions must be a collection of C function names the fake "
                f"exports ({sorted(FUNCTIONS)}). Received: missing_functions={missing_functions!r}"
            )
        if not is_number(step) or not step > 0:
            raise ValueError(f"step must be a number of seconds > 0. Received: step={step!r}")
        self.gpus = tuple(gpus)
        self.driver_version = driver_version
        self.init_error = init_error
        self.step = step
        self.calls: collections.Counter[str] = collections.Counter()
        self.callback_errors: list[tuple[str, BaseException]] = []
        self._clock = clock
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._init_count = 0
        self._installed = False
        self._previous: tuple[object | None, bool] = (None, False)
        self._error_strings: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self.library = self._build_library(set(missing_functions))

    # -- installing -----------------------------------------------------------------

    def install(self) -> FakeDriver:
        """Route every pynvml call in this process to this driver (restarts NVML)."""
        if self._installed:
            raise RuntimeError("This FakeDriver is already installed.")
        self._started = time.monotonic()
        self._previous = nvml.swap_library(self.library, fake=True)
        self._installed = True
        return self

    def uninstall(self) -> None:
        """Put back whatever library was in place before :meth:`install`."""
        if self._installed:
            library, fake = self._previous
            nvml.swap_library(library, fake=fake)
            self._installed = False

    def elapsed(self) -> float:
        """The driver's time: what time-varying metrics and ``lost_at`` are read at."""
        if self._clock is not None:
            return self._clock()
        return time.monotonic() - self._started

    # -- plumbing -------------------------------------------------------------------

    def _build_library(self, missing: set[str]) -> types.SimpleNamespace:
        functions = {
            name: ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(
                self._callback(name, getattr(self, "_" + name))
            )
            for name, argtypes in _SIGNATURES.items()
            if name not in missing
        }
        if "nvmlErrorString" not in missing:
            # Returns a char*; pynvml sets restype=c_char_p on the Python side itself.
            functions["nvmlErrorString"] = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(
                self._error_string
            )
        return types.SimpleNamespace(**functions)

    def _callback(self, name: str, implementation: Callable[..., None]) -> Callable[..., int]:
        def callback(*args: Any) -> int:
            with self._lock:
                self.calls[name] += 1
            try:
                implementation(*args)
            except _Return as answer:
                return answer.code
            except Exception as exc:  # an escaping exception would read as SUCCESS
                with self._lock:
                    self.callback_errors.append((name, exc))
                return abi.ERROR_UNKNOWN
            return abi.SUCCESS

        return callback

    def _error_string(self, code: int) -> int:
        with self._lock:
            if code not in self._error_strings:
                self._error_strings[code] = ctypes.create_string_buffer(
                    f"Fake NVML error {code}".encode()
                )
            return ctypes.addressof(self._error_strings[code])

    def _require_init(self) -> None:
        if self._init_count == 0:
            raise _Return(abi.ERROR_UNINITIALIZED)

    def _device(self, handle: int | None, query: str) -> tuple[int, FakeGpu, float]:
        """The index, GPU and elapsed time behind ``handle``, or an error answer."""
        self._require_init()
        index = (handle or 0) - _HANDLE_BASE
        if not 0 <= index < len(self.gpus):
            raise _Return(abi.ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[index]
        elapsed = self.elapsed()
        if gpu.lost_at is not None and elapsed >= gpu.lost_at:
            raise _Return(abi.ERROR_GPU_IS_LOST)
        if query in gpu.forbidden:
            raise _Return(abi.ERROR_NO_PERMISSION)
        if query in gpu.unsupported:
            raise _Return(abi.ERROR_NOT_SUPPORTED)
        return index, gpu, elapsed

    def _metric(self, gpu: FakeGpu, field: str, elapsed: float) -> float:
        return value_at(getattr(gpu, field), elapsed, self.step)

    def _memory(self, handle: int | None) -> tuple[int, int]:
        _, gpu, elapsed = self._device(handle, "memory")
        used = min(max(int(self._metric(gpu, "memory_used", elapsed)), 0), gpu.memory_total)
        return gpu.memory_total, used

    # -- the C functions ------------------------------------------------------------

    def _nvmlInitWithFlags(self, flags: int) -> None:
        if self.init_error is not None:
            raise _Return(INIT_ERRORS[self.init_error])
        with self._lock:
            self._init_count += 1

    def _nvmlShutdown(self) -> None:
        with self._lock:
            if self._init_count == 0:
                raise _Return(abi.ERROR_UNINITIALIZED)
            self._init_count -= 1

    def _nvmlSystemGetDriverVersion(self, buffer: int | None, length: int) -> None:
        self._require_init()
        _write_string(buffer, length, self.driver_version)

    def _nvmlSystemGetProcessName(self, pid: int, buffer: int | None, length: int) -> None:
        self._require_init()
        elapsed = self.elapsed()
        for gpu in self.gpus:
            for process in processes_at(gpu, elapsed):
                if process.pid == pid:
                    _write_string(buffer, length, process.name)
                    return
        raise _Return(abi.ERROR_NOT_FOUND)

    def _nvmlDeviceGetCount_v2(self, count: int | None) -> None:
        self._require_init()
        _out(count, ctypes.c_uint).value = len(self.gpus)

    def _nvmlDeviceGetHandleByIndex_v2(self, index: int, device: int | None) -> None:
        self._require_init()
        if index >= len(self.gpus):
            raise _Return(abi.ERROR_INVALID_ARGUMENT)
        _out(device, ctypes.c_void_p).value = _HANDLE_BASE + index

    def _nvmlDeviceGetName(self, handle: int | None, buffer: int | None, length: int) -> None:
        _, gpu, _ = self._device(handle, "name")
        _write_string(buffer, length, gpu.name)

    def _nvmlDeviceGetUUID(self, handle: int | None, buffer: int | None, length: int) -> None:
        index, gpu, _ = self._device(handle, "uuid")
        uuid = gpu.uuid or f"GPU-fa4e0000-0000-4000-8000-{index:012x}"
        _write_string(buffer, length, uuid)

    def _nvmlDeviceGetMemoryInfo(self, handle: int | None, memory: int | None) -> None:
        total, used = self._memory(handle)
        out = _out(memory, abi.Memory)
        out.total, out.used, out.free = total, used, total - used

    def _nvmlDeviceGetMemoryInfo_v2(self, handle: int | None, memory: int | None) -> None:
        total, used = self._memory(handle)
        out = _out(memory, abi.MemoryV2)
        if out.version != abi.MEMORY_V2:
            raise _Return(abi.ERROR_ARGUMENT_VERSION_MISMATCH)
        out.total, out.reserved, out.used, out.free = total, 0, used, total - used

    def _nvmlDeviceGetUtilizationRates(self, handle: int | None, rates: int | None) -> None:
        _, gpu, elapsed = self._device(handle, "utilization")
        out = _out(rates, abi.Utilization)
        out.gpu = _percent(self._metric(gpu, "utilization_gpu", elapsed))
        out.memory = _percent(self._metric(gpu, "utilization_memory", elapsed))

    def _nvmlDeviceGetTemperatureV(self, handle: int | None, reading: int | None) -> None:
        _, gpu, elapsed = self._device(handle, "temperature")
        out = _out(reading, abi.TemperatureV1)
        if out.version != abi.TEMPERATURE_V1:
            raise _Return(abi.ERROR_ARGUMENT_VERSION_MISMATCH)
        if out.sensorType != abi.TEMPERATURE_GPU:
            raise _Return(abi.ERROR_INVALID_ARGUMENT)
        out.temperature = round(self._metric(gpu, "temperature", elapsed))

    def _nvmlDeviceGetTemperature(self, handle: int | None, sensor: int,
                                  temperature: int | None) -> None:
        _, gpu, elapsed = self._device(handle, "temperature")
        if sensor != abi.TEMPERATURE_GPU:
            raise _Return(abi.ERROR_INVALID_ARGUMENT)
        _out(temperature, ctypes.c_uint).value = round(self._metric(gpu, "temperature", elapsed))

    def _nvmlDeviceGetPowerUsage(self, handle: int | None, milliwatts: int | None) -> None:
        _, gpu, elapsed = self._device(handle, "power_draw")
        watts = self._metric(gpu, "power_draw", elapsed)
        _out(milliwatts, ctypes.c_uint).value = round(watts * 1000)

    def _nvmlDeviceGetEnforcedPowerLimit(self, handle: int | None, milliwatts: int | None) -> None:
        _, gpu, _ = self._device(handle, "power_limit")
        _out(milliwatts, ctypes.c_uint).value = round(gpu.power_limit * 1000)

    def _nvmlDeviceGetNumGpuCores(self, handle: int | None, cores: int | None) -> None:
        _, gpu, _ = self._device(handle, "cores")
        _out(cores, ctypes.c_uint).value = gpu.cuda_cores

    def _nvmlDeviceGetMaxClockInfo(self, handle: int | None, clock_type: int,
                                   clock: int | None) -> None:
        _, gpu, _ = self._device(handle, "clocks")
        if clock_type not in (abi.CLOCK_GRAPHICS, abi.CLOCK_SM):
            raise _Return(abi.ERROR_NOT_SUPPORTED)  # memory and video clocks: not scripted
        _out(clock, ctypes.c_uint).value = gpu.max_sm_clock_mhz

    def _nvmlDeviceGetComputeRunningProcesses_v3(self, handle: int | None, count: int | None,
                                                 infos: int | None) -> None:
        _, gpu, elapsed = self._device(handle, "processes")
        _write_processes(count, infos, processes_at(gpu, elapsed))

    def _nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle: int | None, count: int | None,
                                                  infos: int | None) -> None:
        self._device(handle, "processes")
        _write_processes(count, infos, ())


def _out(pointer: int | None, ctype: type[Any]) -> Any:
    """The C object an out-parameter points to (NULL is an invalid argument)."""
    if not pointer:
        raise _Return(abi.ERROR_INVALID_ARGUMENT)
    return ctype.from_address(pointer)


def _write_string(buffer: int | None, length: int, text: str) -> None:
    data = text.encode() + b"\0"
    if not buffer:
        raise _Return(abi.ERROR_INVALID_ARGUMENT)
    if len(data) > length:
        raise _Return(abi.ERROR_INSUFFICIENT_SIZE)
    ctypes.memmove(buffer, data, len(data))


def _percent(value: float) -> int:
    return min(max(round(value), 0), 100)


def _write_processes(count: int | None, infos: int | None, processes: Any) -> None:
    """NVML's two-call protocol: report the size needed, then fill the array."""
    capacity = _out(count, ctypes.c_uint)
    needed = len(processes)
    if needed and (not infos or capacity.value < needed):
        capacity.value = needed
        raise _Return(abi.ERROR_INSUFFICIENT_SIZE)
    array = (abi.ProcessInfo * needed).from_address(infos) if needed else ()
    for slot, process in zip(array, processes):
        slot.pid = process.pid
        # ULLONG_MAX is NVML's "not available" (pynvml turns it into None)
        slot.usedGpuMemory = 2**64 - 1 if process.gpu_memory is None else process.gpu_memory
        slot.gpuInstanceId = slot.computeInstanceId = 0xFFFFFFFF
    capacity.value = needed


@contextmanager
def fake_nvml(*gpus: FakeGpu, **options: Any) -> Iterator[FakeDriver]:
    """Install a :class:`FakeDriver` for the ``with`` block and remove it afterwards.

    Takes the same arguments as :class:`FakeDriver`::

        with fake_nvml(FakeGpu(memory_used=[1 * GIB, 30 * GIB]), FakeGpu()) as driver:
            nbreplica.snapshot()
    """
    driver = FakeDriver(*gpus, **options).install()
    try:
        yield driver
    finally:
        driver.uninstall()

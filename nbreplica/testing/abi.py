"""The slice of NVML's C ABI the fake driver implements: return codes and structs.

These mirror ``nvml.h`` (the driver's side of the contract), so the fake writes the
same bytes the real library would and pynvml's own structs read them back.
"""

from __future__ import annotations

import ctypes

SUCCESS = 0
ERROR_UNINITIALIZED = 1
ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
ERROR_NO_PERMISSION = 4
ERROR_NOT_FOUND = 6
ERROR_INSUFFICIENT_SIZE = 7
ERROR_DRIVER_NOT_LOADED = 9
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_GPU_IS_LOST = 15
ERROR_ARGUMENT_VERSION_MISMATCH = 25
ERROR_UNKNOWN = 999

TEMPERATURE_GPU = 0
CLOCK_GRAPHICS = 0
CLOCK_SM = 1


class Memory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class MemoryV2(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("total", ctypes.c_ulonglong),
        ("reserved", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class Utilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class TemperatureV1(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("sensorType", ctypes.c_uint),
        ("temperature", ctypes.c_int),
    ]


class ProcessInfo(ctypes.Structure):
    """``nvmlProcessInfo_t`` as the ``_v3`` process queries fill it."""

    _fields_ = [
        ("pid", ctypes.c_uint),
        ("usedGpuMemory", ctypes.c_ulonglong),
        ("gpuInstanceId", ctypes.c_uint),
        ("computeInstanceId", ctypes.c_uint),
    ]


def struct_version(struct: type[ctypes.Structure], version: int) -> int:
    """The ``version`` field value NVML expects: ``sizeof(struct) | version << 24``."""
    return ctypes.sizeof(struct) | (version << 24)


MEMORY_V2 = struct_version(MemoryV2, 2)
TEMPERATURE_V1 = struct_version(TemperatureV1, 1)

"""What devices exist right now and how busy they are: :func:`snapshot`."""

from __future__ import annotations

from nbreplica.gpus import emulation
from nbreplica.devices import nvml
from nbreplica.devices.records import DeviceStats


def snapshot() -> list[DeviceStats]:
    """One record per GPU, read now, in index order.

    NVML's GPUs when it has any (simulated ones when the fake driver from
    :mod:`nbreplica.testing` is in place); otherwise the emulated GPUs, if
    :func:`nbreplica.emulate_gpus` made some, with only index and name known;
    otherwise an empty list (:func:`nvml_status` says why). Never raises.
    """
    return nvml.read_devices() or emulated_devices()


def emulated_devices() -> list[DeviceStats]:
    """Records for the emulated GPUs: TensorFlow logical CPU devices that have no
    memory, utilization, temperature or power of their own, so those stay ``None``."""
    return [
        DeviceStats(index, emulation.emulated_name(index),
                    emulated=True)
        for index in range(emulation.emulated_count())
    ]


def nvml_status() -> str:
    """One line on NVML: why it is unavailable (e.g. "NVIDIA driver not loaded"), or
    which driver it found and how many GPUs."""
    return nvml.status()


def driver_version() -> str | None:
    """The NVIDIA driver version, or ``None`` when NVML is unavailable."""
    return nvml.driver_version()

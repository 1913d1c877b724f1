"""Which GPUs exist and how busy they are, read through NVML (never imports TensorFlow).

``snapshot()`` reads every device now; ``Sampler`` reads them in the background;
``free_gpus()`` picks the idle ones; ``nvml_status()`` says why there are none.
"""

from nbreplica.devices.choose import free_gpus
from nbreplica.devices.inventory import driver_version, nvml_status, snapshot
from nbreplica.devices.records import DeviceStats, ProcessInfo
from nbreplica.devices.sampler import Sampler

__all__ = [
    "DeviceStats",
    "ProcessInfo",
    "Sampler",
    "driver_version",
    "free_gpus",
    "nvml_status",
    "snapshot",
]

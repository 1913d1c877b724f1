"""Which GPUs are free enough to use: :func:`free_gpus`."""

from __future__ import annotations

from collections.abc import Sequence

from nbreplica._checks import is_number
from nbreplica.devices.inventory import snapshot
from nbreplica.devices.records import GIB, DeviceStats


def free_gpus(
    min_free_gib: float = 1.0,
    max_utilization: float = 10.0,
    devices: Sequence[DeviceStats] | None = None,
) -> list[int]:
    """The indices of the GPUs with at least ``min_free_gib`` GiB of free memory and
    at most ``max_utilization`` percent GPU utilization.

    A criterion a device cannot be checked against (its metric is ``None``, as on
    emulated GPUs) does not exclude it; a lost GPU is never free. ``devices`` defaults
    to a fresh :func:`nbreplica.snapshot`. To make the result the default device set::

        nbreplica.use_devices(nbreplica.free_gpus(min_free_gib=8))
    """
    if not is_number(min_free_gib) or not min_free_gib >= 0:
        raise ValueError(
            f"min_free_gib must be a number >= 0. Received: min_free_gib={min_free_gib!r}"
        )
    if not is_number(max_utilization) or not 0 <= max_utilization <= 100:
        raise ValueError(
            "max_utilization must be a percentage between 0 and 100. "
            f"Received: max_utilization={max_utilization!r}"
        )
    return [
        device.index
        for device in (snapshot() if devices is None else devices)
        if not device.lost
        and (device.memory_free is None or device.memory_free >= min_free_gib * GIB)
        and (device.utilization_gpu is None or device.utilization_gpu <= max_utilization)
    ]

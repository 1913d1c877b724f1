"""The GPUs as terminal text and as JSON: what ``nbreplica devices`` prints.

One line per GPU (index, name, temperature, utilization, memory used / total, power),
then one line per process using it (PID, user, GPU memory, command); the current
process is marked. Values the driver does not report show as ``n/a``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from nbreplica.devices.owners import process_command, process_user
from nbreplica.devices.records import GIB, DeviceStats, ProcessInfo

NOT_AVAILABLE = "n/a"


def render(devices: Sequence[DeviceStats], title: str,
           shares: Mapping[int, float] | None = None) -> str:
    """``devices`` as terminal text under the line ``title``; with ``shares`` (by
    index), each GPU's line ends with its share of a batch (``n/a``: none)."""
    width = max((len(device.name or "unknown GPU") for device in devices), default=0)
    lines = [title]
    for device in devices:
        lines.append(_device_line(device, width) + (
            "" if shares is None else f" | share {share_text(shares.get(device.index))}"))
        if device.processes is None and not device.lost:
            lines.append("    processes: n/a (the driver does not tell)")
        for process in device.processes or ():
            lines.append(_process_line(process))
    return "\n".join(lines)


def as_json(devices: Sequence[DeviceStats],
            shares: Mapping[int, float] | None = None) -> list[dict[str, Any]]:
    """One JSON-ready object per GPU: every :class:`~nbreplica.DeviceStats` field (bytes,
    percent, degrees Celsius, watts; ``null`` when not reported), each process with its
    ``user`` and ``command`` too; with ``shares``, its ``share`` (``null``: none)."""
    objects = []
    for device in devices:
        fields = dataclasses.asdict(device)
        if shares is not None:
            fields["share"] = shares.get(device.index)
        if device.processes is not None:
            fields["processes"] = [
                {**dataclasses.asdict(process), "user": process_user(process.pid),
                 "command": process_command(process.pid)}
                for process in device.processes
            ]
        objects.append(fields)
    return objects


def share_text(share: float | None) -> str:
    """``"35%"`` or ``"n/a"``."""
    return NOT_AVAILABLE if share is None else f"{100 * share:.0f}%"


def temperature_text(device: DeviceStats) -> str:
    """``"66 °C"`` or ``"n/a"``."""
    return NOT_AVAILABLE if device.temperature is None else f"{device.temperature} °C"


def memory_text(device: DeviceStats) -> str:
    """``"30.0 / 80.0 GiB"`` (used / total) or ``"n/a"``."""
    if device.memory_used is None or not device.memory_total:
        return NOT_AVAILABLE
    return f"{device.memory_used / GIB:.1f} / {device.memory_total / GIB:.1f} GiB"


def power_text(device: DeviceStats) -> str:
    """``"512/700 W"`` (draw / limit), ``"512 W"`` or ``"n/a W"``."""
    if device.power_draw is None:
        return f"{NOT_AVAILABLE} W"
    if device.power_limit is None:
        return f"{device.power_draw:.0f} W"
    return f"{device.power_draw:.0f}/{device.power_limit:.0f} W"


def _device_line(device: DeviceStats, width: int) -> str:
    head = f"[{device.index}] {device.name or 'unknown GPU':<{width}}"
    if device.lost:
        return f"{head} | lost: the GPU fell off the bus"
    utilization = (NOT_AVAILABLE if device.utilization_gpu is None
                   else f"{device.utilization_gpu} %")
    tag = " | emulated" if device.emulated else " | simulated" if device.simulated else ""
    return (f"{head} | {temperature_text(device):>6} | {utilization:>5} | "
            f"{memory_text(device):>17} | {power_text(device):>9}{tag}")


def _process_line(process: ProcessInfo) -> str:
    memory = NOT_AVAILABLE if process.gpu_memory is None else f"{process.gpu_memory / GIB:.1f} GiB"
    command = process_command(process.pid) or process.name or NOT_AVAILABLE
    mark = "  <- this process" if process.pid == os.getpid() else ""
    return (f"    {process.pid:>8}  {process_user(process.pid):<12} {memory:>9}  "
            f"{command}{mark}")

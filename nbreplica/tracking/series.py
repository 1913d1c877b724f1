"""GPU samples turned into training-aligned metrics: one mean per step and per epoch.

Every sample is taken while some training step runs; the samples of one step are
averaged into one value per GPU and metric, logged at that step, and those of one epoch
likewise at that epoch. Steps faster than the sampling interval get one sample each
(steps in between get none); slower steps get the mean of several.

Names follow MLflow's own system metrics, with the GPU's NVML index in them:
``system/gpu_0_utilization_percentage`` per step, ``system/epoch_gpu_0_...`` per
epoch, and ``system/worker_1/...`` for worker 1 of a :mod:`nbreplica.cluster` job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbreplica.devices.records import DeviceStats

#: Each metric's name, and its value in a device record (``None``: not reported).
METRICS: dict[str, Callable[[DeviceStats], float | None]] = {
    "utilization_percentage": lambda d: d.utilization_gpu,
    "memory_usage_megabytes": lambda d: None if d.memory_used is None else d.memory_used / 1e6,
    "memory_usage_percentage": lambda d: _percent(d.memory_used, d.memory_total),
    "power_usage_watts": lambda d: d.power_draw,
    "power_usage_percentage": lambda d: _percent(d.power_draw, d.power_limit),
    "temperature_celsius": lambda d: d.temperature,
}


@dataclass(frozen=True)
class Point:
    """One logged value: its metric name, value, step (or epoch) and when it was
    measured (seconds since the Unix epoch, of the step's last sample)."""

    name: str
    value: float
    step: int
    wall_time: float


def prefix(worker: int | None) -> str:
    """The start of every metric name: ``"system/"``, or ``"system/worker_1/"``."""
    return "system/" if worker is None else f"system/worker_{worker}/"


def values(device: DeviceStats) -> dict[str, float]:
    """The metrics ``device`` reports, by name (those it does not report left out)."""
    found = {name: read(device) for name, read in METRICS.items()}
    return {name: float(value) for name, value in found.items() if value is not None}


class Means:
    """The mean of every GPU's metrics over the samples of one step (or epoch) at a
    time: :meth:`add` returns the means of the step that ended, :meth:`pop` those of
    the step in progress."""

    def __init__(self, start: str) -> None:
        self._start = start
        self._key: int | None = None
        self._sums: dict[str, list[float]] = {}
        self._wall_time = 0.0

    def add(self, key: int, devices: Sequence[DeviceStats], wall_time: float) -> list[Point]:
        """Add a sample taken during step ``key``; the means of the previous step if
        ``key`` starts a new one, else nothing."""
        done = self.pop() if key != self._key else []
        self._key = key
        self._wall_time = wall_time
        for device in devices:
            for metric, value in values(device).items():
                total = self._sums.setdefault(f"{self._start}gpu_{device.index}_{metric}",
                                              [0.0, 0])
                total[0] += value
                total[1] += 1
        return done

    def pop(self) -> list[Point]:
        """The means of the step in progress (none before the first sample); the next
        sample starts afresh."""
        if self._key is None:
            return []
        means = [Point(name, total / count, self._key, self._wall_time)
                 for name, (total, count) in self._sums.items()]
        self._key = None
        self._sums = {}
        return means


def _percent(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else 100.0 * part / whole

"""Background sampling of every device into a bounded buffer: :class:`Sampler`."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType

import pandas as pd

from nbreplica._checks import is_number, is_whole
from nbreplica.devices.inventory import snapshot
from nbreplica.devices.periodic import Periodic
from nbreplica.devices.records import DeviceStats


class Sampler:
    """Samples every device every ``interval`` seconds in a daemon thread.

    Each tick takes one :func:`nbreplica.snapshot` (one NVML pass over all devices).
    Use it as a context manager or with :meth:`start` / :meth:`stop`::

        with nbreplica.Sampler(interval=0.5) as sampler:
            model.fit(x, y, epochs=3)
        sampler.peak_memory()       # {0: 3221225472, 1: 3154116608}
        sampler.to_frame()          # time, device, metric, value

    The buffer keeps the last ``capacity`` samples for :meth:`to_frame`; the summaries
    (:meth:`peak_memory`, :meth:`mean_utilization`) cover every sample since the first
    :meth:`start`, however long the run. A failing sample stops the thread and is kept
    in :attr:`error` (and reported with a warning) rather than raised; sampling also
    stops at interpreter exit, so a kernel shutdown never waits on it.

    Args:
        interval: seconds between samples.
        capacity: how many samples the buffer keeps (the oldest are dropped).
        source: returns the devices to record; defaults to :func:`nbreplica.snapshot`.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        capacity: int = 10_000,
        source: Callable[[], Sequence[DeviceStats]] = snapshot,
    ) -> None:
        if not is_number(interval) or not interval > 0:
            raise ValueError(
                f"interval must be a number of seconds > 0. Received: interval={interval!r}"
            )
        if not is_whole(capacity) or capacity < 1:
            raise ValueError(
                f"capacity must be a whole number of samples >= 1. Received: capacity={capacity!r}"
            )
        self._source = source
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, Sequence[DeviceStats]]] = deque(maxlen=capacity)
        self._count = 0
        self._origin: float | None = None
        self._peak_memory: dict[int, int | None] = {}
        self._utilization_sums: dict[int, tuple[float, int]] = {}
        self._periodic = Periodic(self._sample, float(interval), name="nbreplica-sampler")

    @property
    def interval(self) -> float:
        """Seconds between samples."""
        return self._periodic.interval

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._periodic.running

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped sampling, if one did."""
        return self._periodic.error

    @property
    def sample_count(self) -> int:
        """How many samples were taken since the first :meth:`start` (buffered or not)."""
        with self._lock:
            return self._count

    def start(self) -> Sampler:
        """Start sampling (again, after :meth:`stop`: new samples are appended).

        Raises:
            RuntimeError: already running.
        """
        if self._origin is None:
            self._origin = time.monotonic()
        self._periodic.start()
        return self

    def stop(self) -> None:
        """Stop sampling; waits at most for the sample in progress."""
        self._periodic.stop()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _sample(self) -> None:
        devices = self._source()
        elapsed = time.monotonic() - (self._origin or 0.0)
        with self._lock:
            self._samples.append((elapsed, devices))
            self._count += 1
            for device in devices:
                peak = self._peak_memory.get(device.index)
                if device.memory_used is not None and (peak is None or device.memory_used > peak):
                    peak = device.memory_used
                self._peak_memory[device.index] = peak
                total, count = self._utilization_sums.get(device.index, (0.0, 0))
                if device.utilization_gpu is not None:
                    total, count = total + device.utilization_gpu, count + 1
                self._utilization_sums[device.index] = (total, count)

    def to_frame(self) -> pd.DataFrame:
        """The buffered samples as a tidy table.

        Columns: ``time`` (seconds since the first :meth:`start`), ``device`` (index),
        ``metric`` (a numeric :class:`~nbreplica.DeviceStats` field name, e.g.
        ``"memory_used"``) and ``value`` (float, in that field's unit). Metrics a device
        does not report have no rows. ``frame.attrs["simulated"]`` is true when any
        sample came from the fake driver of :mod:`nbreplica.testing`.
        """
        with self._lock:
            samples = list(self._samples)
        rows = [
            (elapsed, device.index, metric, float(value))
            for elapsed, devices in samples
            for device in devices
            for metric, value in device.metrics().items()
        ]
        frame = pd.DataFrame(rows, columns=["time", "device", "metric", "value"])
        frame = frame.astype({"time": "float64", "device": "int64", "value": "float64"})
        frame.attrs["simulated"] = any(d.simulated for _, devices in samples for d in devices)
        return frame

    def peak_memory(self) -> dict[int, int | None]:
        """The highest ``memory_used`` (bytes) seen per device index; ``None`` for a
        device that never reported memory (e.g. emulated)."""
        with self._lock:
            return dict(self._peak_memory)

    def mean_utilization(self) -> dict[int, float | None]:
        """The mean ``utilization_gpu`` (percent) per device index over the samples
        that reported it; ``None`` for a device that never did."""
        with self._lock:
            return {index: total / count if count else None
                    for index, (total, count) in self._utilization_sums.items()}

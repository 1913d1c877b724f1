"""One ``fit`` call's GPU sampling: the samples aligned to its steps and epochs and
written as they complete, ended when the fit ends, however it ends.

The sampling thread (a :class:`~nbreplica.Sampler`) does every read and every write,
so the training thread only records which step it is in. Keras calls no callback when
``fit`` stops on an error or an interrupt, so each sample also checks that the ``fit``
call it watches is still on its thread's stack; once it is not, sampling ends and what
was measured is written (a ``KILLED`` MLflow run, if the monitor started it).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

from nbreplica.devices import Sampler, nvml
from nbreplica.devices.records import DeviceStats
from nbreplica.tracking.series import Means, Point

#: Seconds between writes to the event files and the MLflow run (and at each epoch end).
FLUSH_INTERVAL_S = 1.0


class Writer(Protocol):
    """Where points go: TensorBoard event files or an MLflow run."""

    def write(self, points: Sequence[Point]) -> None: ...

    def flush(self) -> None: ...

    def close(self, *, interrupted: bool) -> None: ...


class FitWatch:
    """Whether the ``fit`` call that is running the current callback is still running."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "fit":
            frame = frame.f_back
        self._frame = frame  # None: called outside fit, so only on_train_end ends it

    def running(self) -> bool:
        """``False`` once the watched ``fit`` has returned or raised."""
        if self._frame is None:
            return True
        frame = sys._current_frames().get(self._thread)
        while frame is not None and frame is not self._frame:
            frame = frame.f_back
        return frame is not None

    def release(self) -> None:
        """Drop the watched frame (it holds the fit's local variables)."""
        self._frame = None


class Monitoring:
    """Samples ``gpus`` (NVML indices) every ``interval`` seconds and writes the means
    of each step and epoch to ``writers``, their names starting with ``start``."""

    def __init__(self, gpus: Sequence[int], writers: Sequence[Writer], start: str,
                 interval: float, watch: FitWatch) -> None:
        self.gpus = tuple(gpus)
        self.sampler = Sampler(interval, source=self._tick)
        self._writers = list(writers)
        self._watch = watch
        self._steps = Means(start)
        self._epochs = Means(start + "epoch_")
        self._position = (0, 0)  # (global step, epoch): one tuple, replaced atomically
        self._offset = 0  # steps of the epochs before this one
        self._last_step = -1
        self._lock = threading.Lock()
        self._finished = False
        self._flushed_at = time.monotonic()

    def start(self) -> None:
        """Start sampling (when there are GPUs to sample)."""
        if self.gpus:
            self.sampler.start()

    def begin_epoch(self, epoch: int) -> None:
        self._position = (self._offset, epoch)

    def begin_step(self, step: int) -> None:
        self._position = (self._offset + step, self._position[1])

    def end_step(self, step: int) -> None:
        self._last_step = step

    def end_epoch(self) -> None:
        self._offset += self._last_step + 1
        self._last_step = -1
        with self._lock:
            self._flushed_at = 0.0  # the next sample writes what the epoch measured

    def finish(self, *, interrupted: bool = False) -> None:
        """Stop sampling and write every mean not yet written; once only."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.sampler.stop()
        self._watch.release()
        points = self._steps.pop() + self._epochs.pop()
        for writer in self._writers:
            writer.write(points)
            writer.close(interrupted=interrupted)

    def _tick(self) -> list[DeviceStats]:
        devices = nvml.read_devices(self.gpus)
        with self._lock:
            if self._finished:
                return devices
            step, epoch = self._position
            wall_time = time.time()
            points = (self._steps.add(step, devices, wall_time)
                      + self._epochs.add(epoch, devices, wall_time))
            for writer in self._writers:
                writer.write(points)
            if time.monotonic() - self._flushed_at >= FLUSH_INTERVAL_S:
                for writer in self._writers:
                    writer.flush()
                self._flushed_at = time.monotonic()
        if not self._watch.running():
            self.finish(interrupted=True)
        return devices

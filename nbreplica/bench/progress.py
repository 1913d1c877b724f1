"""Progress of a sweep: which point runs now and how long the rest should take."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

if TYPE_CHECKING:
    from nbreplica.bench.measure import Point


@runtime_checkable
class Progress(Protocol):
    """What a sweep reports while it runs (a widget, a text line, or nothing)."""

    def start(self, total: int, title: str) -> None:
        """The sweep will measure ``total`` points."""

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        """``done`` points are measured and ``current`` is being measured now."""

    def finish(self, message: str, outcome: str) -> None:
        """The sweep ended; ``outcome`` is ``"completed"``, ``"interrupted"`` or
        ``"failed"`` and ``message`` says so in words."""


class TimeLeft:
    """How long the rest of a sweep should take, from how long the points measured so
    far took: each remaining point is expected to take as long as the last point of
    its kind (strategy and device count), or, for a kind not measured yet, as long as
    the measured kinds took on average."""

    def __init__(self) -> None:
        self._durations: dict[tuple[str, int], float] = {}

    def add(self, point: Point, seconds: float) -> None:
        """``point`` took ``seconds`` to measure."""
        self._durations[_kind(point)] = seconds

    def estimate(self, remaining: Sequence[Point]) -> float | None:
        """Seconds the ``remaining`` points should take; ``None`` before any point
        has been measured."""
        if not self._durations:
            return None
        typical = sum(self._durations.values()) / len(self._durations)
        return sum(self._durations.get(_kind(point), typical) for point in remaining)


def _kind(point: Point) -> tuple[str, int]:
    return point.strategy, len(point.devices)


def format_duration(seconds: float | None) -> str:
    """``"1:05"`` for 65 s (``"h:mm:ss"`` past an hour); ``"?"`` when unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_line(done: int, total: int, current: str, seconds_left: float | None) -> str:
    """The one-line status both the text and the widget progress show."""
    left = "estimating time left" if seconds_left is None else (
        f"about {format_duration(seconds_left)} left"
    )
    return f"[{done}/{total}] {current} · {left}"


class TextProgress:
    """A status line on a terminal (rewritten in place) or a log (one line per point)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._total = 0
        self._started = 0.0
        self._width = 0

    def start(self, total: int, title: str) -> None:
        self._total = total
        self._started = time.monotonic()
        self._write_line(f"{title}: {total} points")

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        line = status_line(done, self._total, current, seconds_left)
        if self._interactive():
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
        else:
            self._write_line(line)

    def finish(self, message: str, outcome: str) -> None:
        elapsed = format_duration(time.monotonic() - self._started)
        if self._interactive() and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        self._width = 0
        self._write_line(f"{message} in {elapsed}")

    def _interactive(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class NoProgress:
    """Reports nothing."""

    def start(self, total: int, title: str) -> None:
        pass

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        pass

    def finish(self, message: str, outcome: str) -> None:
        pass


def make_progress(progress: bool | Progress | None) -> Progress:
    """The reporter for ``sweep(progress=...)``: a widget inside a notebook kernel,
    else a text line on stderr; ``False`` reports nothing."""
    if progress is False:
        return NoProgress()
    if progress is None or progress is True:
        from nbreplica.notebook.progress import WidgetProgress, in_notebook_kernel

        return WidgetProgress() if in_notebook_kernel() else TextProgress()
    if not isinstance(progress, Progress):
        raise TypeError(
            "progress must be True, False, None or an object with start, update and "
            f"finish methods. Received: progress={progress!r}"
        )
    return progress

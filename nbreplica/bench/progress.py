"""Progress of a sweep: a tqdm bar naming the point measured now and how long the
rest should take (``tqdm.auto``: a widget in a notebook kernel, a text bar elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TextIO, runtime_checkable

from tqdm.auto import tqdm

# The bar's own time-left estimate assumes every point takes as long as the average
# one; :class:`TimeLeft`'s, shown in the postfix, knows that points differ by kind.
_BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} |{bar}| [{elapsed}{postfix}]"


@runtime_checkable
class Progress(Protocol):
    """What a sweep reports while it runs (a progress bar, or nothing)."""

    def start(self, total: int, title: str) -> None:
        """The sweep will measure ``total`` points."""

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        """``done`` points are measured and ``current`` is being measured now."""

    def finish(self, message: str, outcome: str) -> None:
        """The sweep ended; ``outcome`` is ``"completed"``, ``"interrupted"`` or
        ``"failed"`` and ``message`` says so in words."""


class PointKind(Protocol):
    """What :class:`TimeLeft` reads of a sweep point."""

    @property
    def strategy(self) -> str: ...

    @property
    def devices(self) -> Sequence[object]: ...


class TimeLeft:
    """How long the rest of a sweep should take, from how long the points measured so
    far took: each remaining point is expected to take as long as the last point of
    its kind (strategy and device count), or, for a kind not measured yet, as long as
    the measured kinds took on average."""

    def __init__(self) -> None:
        self._durations: dict[tuple[str, int], float] = {}

    def add(self, point: PointKind, seconds: float) -> None:
        """``point`` took ``seconds`` to measure."""
        self._durations[_kind(point)] = seconds

    def estimate(self, remaining: Sequence[PointKind]) -> float | None:
        """Seconds the ``remaining`` points should take; ``None`` before any point
        has been measured."""
        if not self._durations:
            return None
        typical = sum(self._durations.values()) / len(self._durations)
        return sum(self._durations.get(_kind(point), typical) for point in remaining)


def _kind(point: PointKind) -> tuple[str, int]:
    return point.strategy, len(point.devices)


def status(current: str, seconds_left: float | None) -> str:
    """The bar's label: the point measured now and the time left, e.g.
    ``"split on 2 devices, repeat 1 · about 01:15 left"``."""
    left = ("estimating time left" if seconds_left is None
            else f"about {tqdm.format_interval(seconds_left)} left")
    return f"{current} · {left}"


class BarProgress:
    """A ``tqdm.auto`` bar: an ipywidgets bar in a notebook kernel, a text bar on
    ``file`` (default: stderr) elsewhere."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.bar: tqdm | None = None

    def start(self, total: int, title: str) -> None:
        self.bar = tqdm(total=total, desc=title, unit="point", file=self.file,
                        bar_format=_BAR_FORMAT)

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        self.bar.n = done
        self.bar.set_postfix_str(status(current, seconds_left))  # redraws the bar

    def finish(self, message: str, outcome: str) -> None:
        if outcome == "completed":
            self.bar.n = self.bar.total
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.close()  # draws the bar a last time; in a notebook, red if cut short


class NoProgress:
    """Reports nothing."""

    def start(self, total: int, title: str) -> None:
        pass

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        pass

    def finish(self, message: str, outcome: str) -> None:
        pass


def make_progress(progress: bool | Progress | None) -> Progress:
    """The reporter for ``sweep(progress=...)``: ``None`` or ``True`` a
    :class:`BarProgress`, ``False`` nothing, or a custom :class:`Progress` as is."""
    if progress is False:
        return NoProgress()
    if progress is None or progress is True:
        return BarProgress()
    if not isinstance(progress, Progress):
        raise TypeError(
            "progress must be True, False, None or an object with start, update and "
            f"finish methods. Received: progress={progress!r}"
        )
    return progress

"""Progress of a sweep: a tqdm bar naming the point measured now, how long the rest
should take and, in an adaptive sweep, the widest speedup interval so far
(``tqdm.auto``: a widget in a notebook kernel, a text bar elsewhere).

A notebook keeps, beside each widget, the plain text it was displayed with, and that
text is all a viewer without widgets (GitHub, nbviewer, a terminal) shows. So the
notebook bar is displayed with a display id and displayed again when the sweep ends:
its saved text is the sweep's final state, not the "0/9" it started with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

from IPython.display import DisplayHandle, display
from tqdm.auto import tqdm
from tqdm.notebook import tqdm_notebook

if TYPE_CHECKING:
    from nbreplica.gpus.available import Accelerator

# The bar's own time-left estimate assumes every point takes as long as the average
# one; the schedule's TimeLeft, shown in the postfix, knows that points differ by kind.
_BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} |{bar}| [{elapsed}{postfix}]"


@dataclass(frozen=True)
class Status:
    """Where a sweep stands while it measures a point.

    Attributes:
        done: points measured so far.
        total: points measured or planned so far (adaptive sweeps add rounds).
        current: the point measured now, e.g. ``"split on 2 devices, repeat 1"``.
        seconds_left: how long the rest should take; ``None`` while unknown.
        at_most: ``seconds_left`` is an upper bound (an adaptive sweep's budget) rather
            than an estimate.
        widest: the widest speedup interval so far: ((strategy, device count), its
            full width relative to the median); ``None`` before any.
        target_ci: the width an adaptive sweep aims at; ``None`` for a fixed sweep.
    """

    done: int
    total: int
    current: str
    seconds_left: float | None
    at_most: bool = False
    widest: tuple[tuple[str, int], float] | None = None
    target_ci: float | None = None

    def describe(self) -> str:
        """The bar's label, e.g. ``"split on 2 devices, repeat 4 · widest interval
        split×8 18% (target 10%) · at most 02:10 left"``."""
        parts = [self.current]
        if self.target_ci is not None and self.widest is not None:
            (strategy, count), width = self.widest
            parts.append(f"widest interval {strategy}×{count} {describe_width(width)} "
                         f"(target {self.target_ci:.0%})")
        if self.seconds_left is None:
            parts.append("estimating time left")
        else:
            left = tqdm.format_interval(self.seconds_left)
            parts.append(f"{'at most' if self.at_most else 'about'} {left} left")
        return " · ".join(parts)


def titled(what: str, devices: Iterable[Accelerator]) -> str:
    """A sweep bar's title: ``what``, ending ``"on emulated GPUs"`` when the sweep's
    ``devices`` are emulated, as its table and report say too."""
    return f"{what} on emulated GPUs" if any(d.emulated for d in devices) else what


def describe_width(width: float | None) -> str:
    """A speedup interval's relative width in words, e.g. ``"14%"``; ``"too few
    repeats"`` where there is no interval at the confidence asked for yet."""
    if width is None or width == math.inf:
        return "too few repeats"
    return f"{width:.0%}"


@runtime_checkable
class Progress(Protocol):
    """What a sweep reports while it runs (a progress bar, or nothing)."""

    def start(self, total: int, title: str) -> None:
        """The sweep will measure ``total`` points."""

    def update(self, status: Status) -> None:
        """The sweep measures ``status.current`` now."""

    def finish(self, message: str, outcome: str) -> None:
        """The sweep ended; ``outcome`` is ``"completed"``, ``"interrupted"`` or
        ``"failed"`` and ``message`` says so in words."""


class BarProgress:
    """A ``tqdm.auto`` bar: an ipywidgets bar in a notebook kernel, a text bar on
    ``file`` (default: stderr) elsewhere."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.bar: tqdm | None = None
        self.shown: DisplayHandle | None = None  # the notebook bar's display

    def start(self, total: int, title: str) -> None:
        widget = issubclass(tqdm, tqdm_notebook)
        self.bar = tqdm(total=total, desc=title, unit="point", file=self.file,
                        bar_format=_BAR_FORMAT, **({"display": False} if widget else {}))
        if widget:
            self.shown = display(self.bar.container, display_id=True)

    def update(self, status: Status) -> None:
        self.bar.total = status.total
        self.bar.n = status.done
        self.bar.set_postfix_str(status.describe())  # redraws the bar

    def finish(self, message: str, outcome: str) -> None:
        if outcome == "completed":
            self.bar.n = self.bar.total
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.close()  # draws the bar a last time; in a notebook, red if cut short
        if self.shown is not None:  # its saved text: the final state, in full
            bundle = self.bar.container._repr_mimebundle_()
            bundle["text/plain"] = self.bar.container.__repr__(pretty=True)
            self.shown.update(bundle, raw=True)


class NoProgress:
    """Reports nothing."""

    def start(self, total: int, title: str) -> None:
        pass

    def update(self, status: Status) -> None:
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

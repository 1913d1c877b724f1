"""The order in which a sweep measures its points, decided as it goes.

A sweep measures in rounds. Round ``r`` is repeat ``r``: the one-device baseline
(strategy ``"single"``, unless repeat ``r`` has one already), then the other points of
the round, so that every speedup is taken against a baseline measured minutes apart
at most. The first ``repeats`` rounds measure every point. An adaptive sweep (a
``target_ci``) then keeps adding rounds made of the points whose speedup interval is
still wider than the target, until every point meets it or the next round would end
after the time budget.

Strategies are measured in phases, one after the other (``"mirrored"`` last: once a
``MirroredStrategy`` has trained, its threads slow later ``replicate`` steps). Each
phase may spend its share of the budget, in proportion to its number of points, plus
whatever earlier phases left unspent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbreplica._checks import is_number
from nbreplica.bench.progress import Status, describe_width
from nbreplica.strategy.names import BASELINE

if TYPE_CHECKING:
    from nbreplica.bench.measure import Point

#: A kind of point: (strategy, device count).
Kind = tuple[str, int]
#: Builds the point of a kind in a repeat.
MakePoint = Callable[[str, int, int], "Point"]
#: The speedup intervals' relative widths so far, per kind (missing: no interval yet,
#: ``inf``: no interval at the confidence asked for).
Widths = Callable[[], Mapping[Kind, float]]


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



@dataclass(frozen=True)
class Precision:
    """When a sweep stops measuring.

    Attributes:
        repeats: rounds that measure every point (the whole sweep when
            ``target_ci`` is ``None``).
        target_ci: the widest speedup interval accepted, as its full width relative
            to the median; ``None`` for a fixed sweep of ``repeats`` rounds.
        budget_s: seconds the whole sweep may take when adaptive: no round starts
            that is expected to end later. The first ``repeats`` rounds always run.
    """

    repeats: int
    target_ci: float | None = None
    budget_s: float | None = None

    @property
    def adaptive(self) -> bool:
        return self.target_ci is not None

    @classmethod
    def of(cls, repeats: int, target_ci: float | None, budget: float | None) -> Precision:
        """A sweep's precision from its settings: ``repeats`` rounds and no more when
        ``target_ci`` is ``None`` (``budget`` is then ignored), else adaptive.

        Raises:
            ValueError: ``target_ci`` or ``budget`` is not a number > 0.
        """
        if target_ci is None:
            return cls(repeats)
        for name, value, expected in (
            ("target_ci", target_ci, "the widest speedup interval accepted, relative to "
             "the median (e.g. 0.10), or None for exactly `repeats` repeats"),
            ("budget", budget, "the seconds an adaptive sweep may take (e.g. 180); pass "
             "target_ci=None for a sweep without one"),
        ):
            if not is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be {expected}. Received: {name}={value!r}")
        return cls(repeats, float(target_ci), float(budget))


class Schedule:
    """The points of one sweep, in measuring order, as an iterator.

    Args:
        phases: per phase, the kinds it measures besides the baseline (an empty
            phase measures baselines only).
        precision: how many rounds, and when adaptive rounds stop.
        make_point: builds a point from (strategy, device count, repeat).
        widths: the widths reached so far (read between adaptive rounds).
        time_left: how long points take, learnt as they are measured.
        clock: seconds, monotonic; the sweep's budget counts from the schedule's
            creation.
    """

    def __init__(self, phases: Sequence[Sequence[Kind]], precision: Precision, *,
                 make_point: MakePoint, widths: Widths, time_left: TimeLeft,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.precision = precision
        self.time_left = time_left
        self.stopped_by_budget = False
        self._phases = [list(kinds) for kinds in phases]
        self._make_point = make_point
        self._widths = widths
        self._clock = clock
        self._started = clock()
        self._baselines: set[int] = set()
        self._queue: list[Point] = []
        self._yielded = 0
        # Every point of the first rounds, per phase: only the first phase measures
        # baselines in them (later phases' repeats share those).
        self._first_rounds = [
            [[*([make_point(BASELINE, 1, repeat)] if index == 0 else []),
              *(make_point(strategy, count, repeat) for strategy, count in kinds)]
             for repeat in range(1, precision.repeats + 1)]
            for index, kinds in enumerate(self._phases)
        ]

    @property
    def planned(self) -> int:
        """Points measured or planned so far (adaptive rounds add to it)."""
        return self._yielded + len(self._queue) + len(self._upcoming())

    def __iter__(self) -> Iterator[Point]:
        for index, kinds in enumerate(self._phases):
            deadline = self._deadline(index)
            while self._first_rounds[index]:
                yield from self._measure(self._first_rounds[index].pop(0))
            repeat = self.precision.repeats
            while self.precision.adaptive:
                pending = self.unmet(kinds)
                if not pending:
                    break
                repeat += 1
                round_ = self._round(repeat, pending)
                if self._clock() + (self.time_left.estimate(round_) or 0.0) > deadline:
                    self.stopped_by_budget = True
                    break
                yield from self._measure(round_)

    def unmet(self, kinds: Sequence[Kind]) -> list[Kind]:
        """The ``kinds`` whose speedup interval is not yet within the target."""
        reached = self._widths()
        return [kind for kind in kinds
                if not reached.get(kind, math.inf) <= self.precision.target_ci]

    def status(self, current: Point) -> Status:
        """What a progress display shows while ``current`` is measured."""
        widths = {kind: width for kind, width in self._widths().items()
                  if kind[0] != BASELINE}
        widest = max(widths.items(), key=lambda item: item[1], default=None)
        seconds_left = self.time_left.estimate([current, *self._queue, *self._upcoming()])
        if self.precision.adaptive and self.precision.budget_s is not None:
            budget_left = max(0.0, self._started + self.precision.budget_s - self._clock())
            seconds_left = max(budget_left, seconds_left or 0.0)
        return Status(
            done=self._yielded - 1, total=self.planned, current=current.describe(),
            seconds_left=seconds_left, at_most=self.precision.adaptive,
            widest=widest, target_ci=self.precision.target_ci,
        )

    def outcome(self) -> str:
        """What the sweep measured, and for an adaptive sweep whether every speedup
        interval reached the target, e.g. ``"Measured 40 points; not within the 10%
        target when the budget ended: split×8 14%"``."""
        measured = f"Measured {self._yielded} points"
        if not self.precision.adaptive:
            return measured
        target = self.precision.target_ci
        unmet = self.unmet([kind for phase in self._phases for kind in phase])
        if not unmet:
            return f"{measured}; every speedup interval within {target:.0%}"
        widths = self._widths()
        missed = ", ".join(f"{strategy}×{count} {describe_width(widths.get((strategy, count)))}"
                           for strategy, count in unmet)
        return f"{measured}; not within the {target:.0%} target when the budget ended: {missed}"

    def _upcoming(self) -> list[Point]:
        """The first rounds' points not queued yet."""
        return [point for rounds in self._first_rounds for round_ in rounds
                for point in round_]

    def _round(self, repeat: int, kinds: Sequence[Kind]) -> list[Point]:
        baseline = [] if repeat in self._baselines else [self._make_point(BASELINE, 1, repeat)]
        return [*baseline, *(self._make_point(strategy, count, repeat)
                             for strategy, count in kinds)]

    def _measure(self, points: list[Point]) -> Iterator[Point]:
        self._queue = list(points)
        while self._queue:
            point = self._queue.pop(0)
            if point.strategy == BASELINE:
                self._baselines.add(point.repeat)
            self._yielded += 1
            yield point

    def _deadline(self, phase: int) -> float:
        """When phase ``phase``'s share of the budget (and earlier phases' rest) ends."""
        if self.precision.budget_s is None:
            return math.inf
        sizes = [max(1, len(kinds)) for kinds in self._phases]
        share = sum(sizes[:phase + 1]) / sum(sizes)
        return self._started + self.precision.budget_s * share


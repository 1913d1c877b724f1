"""The one sweep loop: every front end (:func:`nbreplica.sweep`, ``%%replicate
--sweep``, ``nbreplica sweep``, multi-worker points) measures its points through
:func:`run_sweep`.

A front end says how to measure one point; the engine walks the
:class:`~nbreplica.bench.schedule.Schedule`, shows progress, records every measured
point as soon as it is measured, times the points for the time-left estimate, and
ends the same way for all: completed, interrupted (``KeyboardInterrupt``), stopped by
the front end (:class:`StopSweep`), or failed (any other error, raised).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.progress import Progress
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.result import SweepResult
from nbreplica.bench.schedule import Kind, MakePoint, Precision, Schedule, TimeLeft


@dataclass(frozen=True)
class Measured:
    """What measuring one point gave: the point as trained (with its global batch
    size), its measurement, and the steps timed after the untimed warm-up ones."""

    point: Point
    measurement: Measurement
    steps: int
    warmup_steps: int


class StopSweep(Exception):
    """Raised by a point's measurement to end the sweep, keeping what it measured:
    ``error`` (already shown to the user) is the outcome's error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep measured, and why it stopped early, if it did."""

    result: SweepResult | None
    """The measured points; a cell sweep gives ``None`` when not even the first was
    measured."""
    error: BaseException | None
    """The ``KeyboardInterrupt`` or the :class:`StopSweep` error that ended the sweep."""


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep measures and how its statistics are taken."""

    phases: Sequence[Sequence[Kind]]
    precision: Precision
    make_point: MakePoint
    efficiency_threshold: float
    confidence: float


def run_sweep(plan: SweepPlan, recorder: Recorder, measure: Callable[[Point], Measured],
              progress: Progress, title: str, *,
              prepare: Callable[[Schedule], None] | None = None,
              after_last: Callable[[], None] | None = None) -> SweepOutcome:
    """Measure every point ``plan``'s schedule decides on with ``measure``.

    Args:
        plan: the phases, precision and statistics settings.
        recorder: records every measured point (and so feeds the schedule's widths).
        measure: measures one point; raises :class:`StopSweep` to end the sweep.
        progress: shows the sweep's progress; started with ``title``.
        prepare: run once before the first point (e.g. to calibrate the steps).
        after_last: run once the schedule has decided that the point just measured
            was the last, before the progress finishes.

    Raises:
        Whatever ``measure`` or ``prepare`` raised, other than ``KeyboardInterrupt``
        and :class:`StopSweep`, once the progress shows the sweep failed.
    """
    schedule = Schedule(plan.phases, plan.precision, make_point=plan.make_point,
                        widths=lambda: recorder.widths(plan.confidence),
                        time_left=TimeLeft())
    progress.start(schedule.planned, title)
    error: BaseException | None = None
    try:
        if prepare is not None:
            prepare(schedule)
        _measure_all(schedule, recorder, measure, progress, after_last)
    except StopSweep as stop:
        error = stop.error
    except KeyboardInterrupt as interrupt:
        error = interrupt
    except BaseException:
        progress.finish(_stopped("failed", recorder, schedule), "failed")
        raise
    if error is None:
        progress.finish(schedule.outcome(), "completed")
    else:
        outcome = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        progress.finish(_stopped(outcome, recorder, schedule), outcome)
    result = recorder.result(schedule.planned, interrupted=error is not None,
                             efficiency_threshold=plan.efficiency_threshold,
                             confidence=plan.confidence)
    return SweepOutcome(result, error)


def _measure_all(schedule: Schedule, recorder: Recorder, measure: Callable[[Point], Measured],
                 progress: Progress, after_last: Callable[[], None] | None) -> None:
    points = iter(schedule)
    point = next(points, None)
    while point is not None:
        progress.update(schedule.status(point))
        started = time.monotonic()
        try:
            measured = measure(point)
        finally:
            schedule.time_left.add(point, time.monotonic() - started)
        recorder.record(measured.point, measured.measurement, steps=measured.steps,
                        warmup_steps=measured.warmup_steps)
        point = next(points, None)
        if point is None and after_last is not None:
            after_last()


def _stopped(outcome: str, recorder: Recorder, schedule: Schedule) -> str:
    return (f"{outcome.capitalize()} after {len(recorder.records)} of {schedule.planned} "
            "points")

"""The order of a sweep's points, and when an adaptive sweep stops adding repeats.

A fake clock and fake widths drive the schedule: nothing is trained here.
"""

from __future__ import annotations

import math


from nbreplica.bench.measure import Point
from nbreplica.bench.schedule import TimeLeft
from nbreplica.bench.schedule import Precision, Schedule

from sweep_helpers import GPUS

SPLIT = [("split", 2), ("split", 4)]
MIRRORED = [("mirrored", 2), ("mirrored", 4)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_point(strategy: str, count: int, repeat: int) -> Point:
    return Point(strategy, GPUS[:count], repeat, 32)


def labels(points: list[Point]) -> list[str]:
    return [f"{p.strategy}{len(p.devices)}r{p.repeat}" for p in points]


def run(schedule: Schedule, clock: FakeClock, seconds_per_point: float = 1.0) -> list[Point]:
    """Measure every point as a sweep does: each takes ``seconds_per_point``."""
    measured = []
    for point in schedule:
        clock.now += seconds_per_point
        schedule.time_left.add(point, seconds_per_point)
        measured.append(point)
    return measured


def schedule_of(phases, precision, widths, clock=None) -> Schedule:
    return Schedule(phases, precision, make_point=make_point, widths=lambda: widths,
                    time_left=TimeLeft(), clock=clock or FakeClock())


def test_a_fixed_sweep_interleaves_baselines_and_measures_mirrored_last():
    schedule = schedule_of([SPLIT, MIRRORED], Precision(repeats=2), widths={})
    assert schedule.planned == 2 * 3 + 2 * 2
    assert labels(run(schedule, FakeClock())) == [
        "single1r1", "split2r1", "split4r1", "single1r2", "split2r2",
        "split4r2", "mirrored2r1", "mirrored4r1", "mirrored2r2", "mirrored4r2"]
    assert schedule.outcome() == "Measured 10 points"


def test_a_sweep_of_one_device_measures_baselines_only():
    schedule = schedule_of([[]], Precision(repeats=3, target_ci=0.1, budget_s=60), {})
    assert labels(run(schedule, FakeClock())) == ["single1r1", "single1r2", "single1r3"]


def test_adaptive_rounds_repeat_only_the_points_still_too_wide_with_their_baseline():
    widths = {("single", 1): 0.0, ("split", 2): 0.30, ("split", 4): 0.25}
    schedule = schedule_of([SPLIT], Precision(2, target_ci=0.10, budget_s=600), widths)
    measured = []
    for point in schedule:
        measured.append(point)
        schedule.time_left.add(point, 1.0)
        if point.repeat == 3:
            widths[("split", 2)] = 0.08  # reached after the third repeat
        if point.repeat == 5:
            widths[("split", 4)] = 0.09
    assert labels(measured) == [
        "single1r1", "split2r1", "split4r1", "single1r2", "split2r2", "split4r2",
        "single1r3", "split2r3", "split4r3", "single1r4", "split4r4", "single1r5",
        "split4r5"]
    assert not schedule.stopped_by_budget
    assert schedule.outcome() == "Measured 13 points; every speedup interval within 10%"


def test_no_round_starts_that_would_end_after_the_budget():
    clock = FakeClock()
    widths = {("split", 2): 0.5, ("split", 4): math.inf}
    schedule = schedule_of([SPLIT], Precision(2, target_ci=0.10, budget_s=10.5), widths,
                           clock)
    measured = run(schedule, clock, seconds_per_point=1.0)
    # 6 points of the first round, then one 3-point round (ends at 9 s); a second
    # would end at 12 s, after the budget.
    assert len(measured) == 9 and clock.now - 100.0 == 9.0
    assert schedule.stopped_by_budget
    assert schedule.outcome() == (
        "Measured 9 points; not within the 10% target when the budget ended: "
        "split×2 50%, split×4 too few repeats")


def test_the_first_round_runs_whatever_the_budget():
    clock = FakeClock()
    schedule = schedule_of([SPLIT], Precision(3, target_ci=0.10, budget_s=1.0),
                           {("split", 2): 0.5}, clock)
    assert len(run(schedule, clock, seconds_per_point=2.0)) == 9
    assert schedule.stopped_by_budget


def test_each_phase_spends_its_share_of_the_budget():
    clock = FakeClock()
    widths = {kind: 0.5 for kind in SPLIT + MIRRORED}
    schedule = schedule_of([SPLIT, MIRRORED], Precision(1, target_ci=0.10, budget_s=20),
                           widths, clock)
    measured = run(schedule, clock, seconds_per_point=1.0)
    split_points = [p for p in measured if p.strategy == "split"]
    mirrored = [p for p in measured if p.strategy == "mirrored"]
    # Split may use half the budget (10 s at 3 s a round); mirrored the rest.
    assert len(split_points) == 2 * 3
    assert measured.index(mirrored[0]) == 9
    assert clock.now - 100.0 <= 20.0
    assert len(mirrored) >= 2 * 2


def test_status_shows_the_widest_interval_and_the_budget_left():
    clock = FakeClock()
    widths = {("single", 1): 0.0, ("split", 2): 0.12, ("split", 4): 0.31}
    schedule = schedule_of([SPLIT], Precision(1, target_ci=0.10, budget_s=60), widths,
                           clock)
    points = iter(schedule)
    first = next(points)
    clock.now += 5.0
    status = schedule.status(first)
    assert (status.done, status.total, status.current) == (0, 3, first.describe())
    assert status.widest == (("split", 4), 0.31) and status.target_ci == 0.10
    assert status.at_most and status.seconds_left == 55.0


def test_a_fixed_sweeps_status_estimates_the_points_left():
    schedule = schedule_of([SPLIT], Precision(2), {})
    points = iter(schedule)
    schedule.time_left.add(next(points), 2.0)
    status = schedule.status(next(points))
    assert not status.at_most and status.target_ci is None
    # This point, split4r1 and the second repeat's 3 points, each at the mean so far.
    assert status.seconds_left == 2.0 * 5

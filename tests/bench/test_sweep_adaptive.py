"""Adaptive sweeps on emulated devices: calibrated steps, the budget, interrupts.

The order of the rounds and the stopping rule are checked without training in
test_sweep_schedule.py; the command-line sweep that reaches its target is in
test_sweep_cli.py.
"""

from __future__ import annotations

import time

import keras
import pytest

import nbreplica
from nbreplica.bench.reliability import (
    MAX_CALIBRATED_STEPS,
    MIN_TIMED_STEPS,
    calibrated_steps,
    steps_needed,
)
from nbreplica.bench.progress import describe_width
from nbreplica.bench.result import SweepInterrupted

from sweep_helpers import QUICK, tiny_data, tiny_model


def test_calibrated_steps_last_long_enough_and_are_precise_enough():
    assert calibrated_steps(0.002, 0.05, 0.95) == 500  # 1 s of 2 ms steps
    assert calibrated_steps(0.5, 0.05, 0.95) == MIN_TIMED_STEPS  # a long step
    assert calibrated_steps(0.5, 0.6, 0.95) == steps_needed(0.6, 0.95) > 100  # noisy
    assert calibrated_steps(1e-6, 0.05, 0.95) == MAX_CALIBRATED_STEPS


def test_a_budget_too_short_for_more_repeats_leaves_the_points_marked():
    x, y = tiny_data()
    started = time.monotonic()
    result = nbreplica.sweep(tiny_model, x, y, devices=(1, 2), batch_size=32, repeats=3,
                             warmup_steps=1, target_ci=0.10, budget=0.5, progress=False)
    elapsed = time.monotonic() - started
    runs = result.runs
    # The first round always runs: 3 repeats; none more fits in the budget.
    assert list(zip(runs["strategy"], runs["repeat"])) == [
        ("single", 1), ("split", 1), ("single", 2), ("split", 2), ("single", 3), ("split", 3)]
    # Calibrated steps, the same for every point; the calibrating run is not stored.
    assert runs["steps"].nunique() == 1 and runs["steps"].iloc[0] >= MIN_TIMED_STEPS
    assert (runs["target_ci"] == 0.10).all()
    split = result.frame.set_index("strategy").loc["split"]
    # Three repeats of a tiny model give a 95% interval, far wider than ±5%.
    assert not split["target_met"] and 0.10 < split["interval_width"] < float("inf")
    table = result.table()
    assert ("Speedup intervals wider than the target when the time budget ended: "
            f"split×2 {describe_width(split['interval_width'])} (target 10%)") in table
    assert elapsed < 120


def test_an_interrupted_adaptive_sweep_keeps_every_repeat_measured():
    built = []

    def interrupted_in_the_adaptive_rounds() -> keras.Model:
        built.append(None)
        if len(built) == 9:  # the baseline of the fifth repeat
            raise KeyboardInterrupt
        return tiny_model()

    x, y = tiny_data()
    with pytest.raises(SweepInterrupted) as caught:
        nbreplica.sweep(interrupted_in_the_adaptive_rounds, x, y, devices=(1, 2),
                        batch_size=32, repeats=3,
                        **{**QUICK, "target_ci": 0.01, "budget": 600})
    result = caught.value.result
    assert list(result.runs["repeat"]) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert result.interrupted and result.planned_points == 10
    assert list(nbreplica.load_results(result.sweep_id)["repeat"]) == [1, 1, 2, 2, 3, 3, 4, 4]

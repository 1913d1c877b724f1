"""Intervals, scaling-law fits and recommendations, checked against known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scipy import stats as distributions

from nbreplica.bench.reliability import (
    MIN_TIMED_STEPS,
    STEP_PRECISION,
    assess,
    relative_half_width,
    steps_needed,
)
from nbreplica.bench.stats import (
    Interval,
    geometric_interval,
    median_interval,
    recommend_devices,
    scaling_table,
    sequential_level,
    summarize,
)

from sweep_helpers import STEADY, stored_runs


def test_few_repeats_give_their_range_and_say_how_often_it_holds_the_median():
    interval = median_interval([110.0, 95.0, 100.0])
    assert interval == Interval(100.0, 95.0, 110.0, 0.75)  # 1 - 2 / 2**3
    assert median_interval([3.0, 1.0]) == Interval(2.0, 1.0, 3.0, 0.5)


def test_more_repeats_give_inner_order_statistics():
    # 10 values: [x(2), x(9)] holds the median with 1 - 2 * 11/1024 = 97.9% >= 95%,
    # [x(3), x(8)] only with 89.1%.
    interval = median_interval([7, 1, 9, 3, 10, 5, 2, 8, 6, 4])
    assert interval == Interval(5.5, 2.0, 9.0, pytest.approx(1 - 22 / 1024))
    assert median_interval(range(1, 11), confidence=0.85) == Interval(
        5.5, 3.0, 8.0, pytest.approx(1 - 112 / 1024))


@pytest.mark.parametrize("repeats", [3, 6, 10])
def test_the_reported_coverage_is_the_coverage_reached(repeats):
    # Heavily skewed noise (median 50): the interval assumes no distribution.
    noise = distributions.lognorm(s=1.5, scale=50.0)
    rng = np.random.default_rng(repeats)
    trials = 4000
    intervals = [median_interval(noise.rvs(repeats, random_state=rng))
                 for _ in range(trials)]
    hits = sum(interval.low <= 50.0 <= interval.high for interval in intervals)
    assert hits / trials == pytest.approx(intervals[0].coverage, abs=0.025)


def test_geometric_interval_is_the_t_interval_of_the_mean_log():
    values = [1.8, 2.0, 2.2]
    logs = np.log(values)
    # Student's t at 2 degrees of freedom, 97.5% (tables: 4.302653).
    half = 4.302653 * logs.std(ddof=1) / math.sqrt(3)
    interval = geometric_interval(values, 0.95)
    assert interval.median == pytest.approx(math.exp(logs.mean()))
    assert (interval.low, interval.high) == pytest.approx(
        (math.exp(logs.mean() - half), math.exp(logs.mean() + half)), rel=1e-6)
    assert interval.coverage == 0.95
    # An adaptive sweep's interval is taken at half the error rate, and says 95%.
    adaptive = geometric_interval(values, 0.95, sequential=True)
    assert sequential_level(0.95) == pytest.approx(0.975)
    assert adaptive.low < interval.low < interval.high < adaptive.high
    assert adaptive.coverage == 0.95


def test_geometric_interval_edge_cases():
    single = geometric_interval([5.0])
    assert single.median == pytest.approx(5.0)
    assert math.isnan(single.low) and math.isnan(single.coverage)
    same = geometric_interval([2.0, 2.0, 2.0])
    assert (same.median, same.low, same.high) == pytest.approx((2.0, 2.0, 2.0))
    assert math.isnan(geometric_interval([]).median)
    assert geometric_interval([4.0, math.nan, 1.0, -1.0]).median == pytest.approx(2.0)


def test_median_interval_edge_cases():
    single = median_interval([5.0])
    assert single.median == 5.0 and math.isnan(single.low) and math.isnan(single.coverage)
    assert median_interval([2.0, 2.0, 2.0]) == Interval(2.0, 2.0, 2.0, 0.75)
    assert math.isnan(median_interval([]).median)
    assert median_interval([1.0, math.nan, 3.0]) == Interval(2.0, 1.0, 3.0, 0.5)


@pytest.mark.parametrize("cv", [0.3, 1.0])
def test_steps_needed_is_the_fewest_that_reach_the_precision(cv):
    needed = steps_needed(cv, 0.95)
    assert relative_half_width(needed, cv, 0.95) <= STEP_PRECISION
    assert relative_half_width(needed - 1, cv, 0.95) > STEP_PRECISION
    # Student's t at 37 degrees of freedom (tables: 2.026192) over sqrt(38) steps.
    assert relative_half_width(38, 0.3, 0.95) == pytest.approx(
        2.026192 * 0.3 / math.sqrt(38), rel=1e-6)


def test_steps_needed_without_a_known_spread_is_the_floor():
    assert steps_needed(math.nan, 0.95) == steps_needed(0.0, 0.95) == MIN_TIMED_STEPS
    assert steps_needed(0.02, 0.95) == MIN_TIMED_STEPS  # a steady step needs no more


def test_assessment_rules():
    steady = assess(timed_steps=50, step_time_cv=0.05, repeats=3,
                    relative_widths=[0.1, math.nan], interval_coverage=0.75,
                    confidence=0.95)
    assert steady.reliable and steady.reason == "" and steady.steps_needed == 10
    tiny = assess(timed_steps=2, step_time_cv=0.3, repeats=2, relative_widths=[3.0],
                  interval_coverage=0.5, confidence=0.95)
    assert not tiny.reliable
    assert tiny.reason == ("2 timed steps/repeat, time ≥ 38; 2 repeats, run ≥ 3; "
                           "repeats disagree: interval wider than the figure")
    noisy = assess(timed_steps=20, step_time_cv=0.3, repeats=3, relative_widths=[0.2],
                   interval_coverage=0.75, confidence=0.95)
    assert noisy.reason == "20 timed steps/repeat, time ≥ 38"
    # Enough repeats for a 95% interval: it measures their spread, short or not.
    repeated = assess(timed_steps=20, step_time_cv=0.3, repeats=6, relative_widths=[0.2],
                      interval_coverage=0.97, confidence=0.95)
    assert repeated.reliable and repeated.steps_needed == MIN_TIMED_STEPS
    too_short = assess(timed_steps=5, step_time_cv=0.3, repeats=6, relative_widths=[0.2],
                       interval_coverage=0.97, confidence=0.95)
    assert too_short.reason == f"5 timed steps/repeat, time ≥ {MIN_TIMED_STEPS}"
    assert noisy.with_unreliable_baseline(tiny).reasons == (
        "20 timed steps/repeat, time ≥ 38", "baseline unreliable")
    assert tiny.with_unreliable_baseline(steady) is tiny


def test_a_steady_sweep_is_reliable_and_fitted():
    summary = summarize(stored_runs(STEADY, steps=50, step_cv=0.05))
    assert summary["reliable"].all() and (summary["unreliable_reason"] == "").all()
    assert list(summary["steps_needed"]) == [10, 10, 10]
    assert list(summary["timed_steps"]) == [50, 50, 50]
    assert summary["step_time_cv"].to_numpy() == pytest.approx([0.05] * 3)
    assert (summary["interval_coverage"] == 0.95).all()
    split4 = summary.iloc[2]
    assert split4["samples_per_s"] == pytest.approx((3000 * 3100 * 2950) ** (1 / 3))
    assert split4["samples_per_s_low"] < 2950 < 3100 < split4["samples_per_s_high"]
    scaling = scaling_table(summary)
    assert scaling["reliable"].tolist() == [True] and scaling["law"].tolist() == ["amdahl"]
    assert 0 < scaling["serial_fraction"].iloc[0] < 0.3
    assert scaling["fit_error"].iloc[0] < 0.01
    assert scaling["peak_devices"].tolist() == [math.inf]
    assert scaling["recommended_devices"].tolist() == [4]


def test_a_tiny_sweep_is_unreliable_and_not_fitted():
    tiny = {key: rates[:2] for key, rates in STEADY.items()}
    summary = summarize(stored_runs(tiny, steps=2, step_cv=0.3))
    assert not summary["reliable"].any()
    # Two repeats give a 95% interval, which measures their spread whatever the
    # step times': the floor of timed steps applies.
    assert summary["unreliable_reason"].tolist() == [
        "2 timed steps/repeat, time ≥ 10; 2 repeats, run ≥ 3",
        *["2 timed steps/repeat, time ≥ 10; 2 repeats, run ≥ 3; baseline unreliable"] * 2,
    ]
    assert (summary["steps_needed"] == MIN_TIMED_STEPS).all()
    scaling = scaling_table(summary)
    assert scaling["law"].isna().all()
    assert math.isnan(scaling["serial_fraction"].iloc[0])
    assert math.isnan(scaling["predicted_speedup_16"].iloc[0])
    assert scaling["recommended_devices"].isna().all()
    assert scaling["unreliable_reason"].tolist() == [
        "3 of 3 points unreliable: time ≥ 10 steps/repeat (now 2), run ≥ 3 repeats (now 2)"]


def test_repeats_that_disagree_by_more_than_the_figure_are_unreliable():
    wild = {**STEADY, ("split", 4): [3000.0, 300.0, 9000.0]}
    summary = summarize(stored_runs(wild, steps=50, step_cv=0.05)).set_index("devices")
    assert summary.loc[[1, 2], "reliable"].all()
    assert summary.loc[4, "unreliable_reason"] == (
        "repeats disagree: interval wider than the figure")


def test_runs_stored_before_the_step_spread_was_recorded():
    runs = stored_runs(STEADY, steps=50, step_cv=0.05).drop(columns="step_time_sd_s")
    summary = summarize(runs)
    assert summary["step_time_cv"].isna().all()
    assert summary["reliable"].all() and (summary["steps_needed"] == MIN_TIMED_STEPS).all()


def test_recommendation_is_the_largest_count_above_the_threshold():
    assert recommend_devices([1, 2, 4, 8], [1.0, 0.9, 0.72, 0.4], 0.7) == 4
    assert recommend_devices([1, 2, 4, 8], [1.0, 0.5, 0.3, 0.2], 0.7) == 1
    assert recommend_devices([1, 2, 4, 8], [1.0, 0.95, 0.9, 0.8], 0.7) == 8


def test_summary_of_known_runs():
    base = {"sweep_id": "s", "sweep_name": "n", "model": "m", "params": 10,
            "scaling": "strong", "global_batch_size": 64, "device_names": "d",
            "emulated": True, "host": "h", "tensorflow_version": "t",
            "keras_version": "k", "first_step_s": 1.0, "step_time_p50_s": 0.01,
            "step_time_p90_s": 0.02, "peak_memory_bytes": np.nan,
            "mean_utilization": np.nan, "timestamp": "2025", "steps": 20}
    runs = pd.DataFrame([
        {**base, "strategy": s, "devices": n, "repeat": r, "samples_per_s": v,
         "speedup": sp, "per_device_batch_size": 64 / n}
        for s, n, r, v, sp in [("single", 1, 1, 100, 1), ("split", 4, 1, 300, 3),
                               ("single", 1, 2, 110, 1), ("split", 4, 2, 280, 280 / 110)]
    ])
    summary = summarize(runs).set_index("strategy")
    assert summary.loc["single", "samples_per_s"] == pytest.approx(math.sqrt(100 * 110))
    assert summary.loc["split", "speedup"] == pytest.approx(math.sqrt(3 * 280 / 110))
    assert summary.loc["split", "efficiency"] == pytest.approx(summary.loc["split", "speedup"] / 4)
    assert summary.loc["split", "repeats"] == 2
    assert summary.loc["split", "timed_steps"] == 20
    assert math.isnan(summary.loc["split", "peak_memory_bytes"])

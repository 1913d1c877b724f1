"""Intervals, scaling-law fits and recommendations, checked against known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nbreplica.bench.stats import (
    Interval,
    fit_serial_fraction,
    median_interval,
    predict_speedup,
    recommend_devices,
    summarize,
    t_quantile,
)


@pytest.mark.parametrize(("df", "expected"), [
    (1, 12.7062047), (2, 4.30265273), (4, 2.77644511), (10, 2.22813885),
    (30, 2.04227246), (1e6, 1.95996636),
])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, rel=1e-7)
    assert t_quantile(0.025, df) == pytest.approx(-expected, rel=1e-7)


def test_median_interval_on_the_log_scale():
    values = [100.0, 110.0, 95.0]
    interval = median_interval(values)
    logs = np.log(values)
    half = 4.30265273 * logs.std(ddof=1) / math.sqrt(3)
    assert interval.median == 100.0
    assert interval.low == pytest.approx(math.exp(logs.mean() - half))
    assert interval.high == pytest.approx(math.exp(logs.mean() + half))
    # Three values say little: the interval is far wider than their range.
    assert interval.low < 90 and interval.high > 115


def test_median_interval_always_contains_the_median():
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = np.exp(rng.standard_normal(rng.integers(2, 12)) * 2)
        values[0] *= 1e4  # an outlying repeat
        interval = median_interval(values)
        assert interval.low <= interval.median <= interval.high


def test_median_interval_edge_cases():
    single = median_interval([5.0])
    assert single.median == 5.0 and math.isnan(single.low) and math.isnan(single.high)
    assert median_interval([2.0, 2.0, 2.0]) == Interval(2.0, 2.0, 2.0)
    assert math.isnan(median_interval([]).median)
    with pytest.raises(ValueError, match=r"Received: values=\[1.0, 0.0\]"):
        median_interval([1.0, 0.0])


def test_median_interval_covers_at_its_level():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        values = np.exp(rng.normal(math.log(50), 0.3, size=3))
        interval = median_interval(values)
        hits += interval.low <= 50 <= interval.high
    assert 0.93 < hits / 2000 < 0.97


@pytest.mark.parametrize(("scaling", "fraction"), [("strong", 0.1), ("weak", 0.25)])
def test_fit_recovers_the_serial_fraction(scaling, fraction):
    devices = [1, 2, 4, 8]
    speedups = [predict_speedup(fraction, n, scaling) for n in devices]
    assert fit_serial_fraction(devices, speedups, scaling) == pytest.approx(fraction)
    assert predict_speedup(fraction, 1, scaling) == pytest.approx(1.0)


def test_fit_of_a_slowdown_and_of_nothing():
    assert fit_serial_fraction([1, 2, 4], [1.0, 0.8, 0.6], "strong") == 1.0
    assert predict_speedup(1.0, 32, "strong") == 1.0
    assert math.isnan(fit_serial_fraction([1], [1.0], "strong"))
    with pytest.raises(ValueError, match="Received: scaling='linear'"):
        fit_serial_fraction([1, 2], [1.0, 2.0], "linear")


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
            "mean_utilization": np.nan, "timestamp": "2025"}
    runs = pd.DataFrame([
        {**base, "strategy": s, "devices": n, "repeat": r, "samples_per_s": v,
         "speedup": sp, "per_device_batch_size": 64 / n}
        for s, n, r, v, sp in [("single", 1, 1, 100, 1), ("split", 4, 1, 300, 3),
                               ("single", 1, 2, 110, 1), ("split", 4, 2, 280, 280 / 110)]
    ])
    summary = summarize(runs).set_index("strategy")
    assert summary.loc["single", "samples_per_s"] == 105
    assert summary.loc["split", "speedup"] == pytest.approx((3 + 280 / 110) / 2)
    assert summary.loc["split", "efficiency"] == pytest.approx(summary.loc["split", "speedup"] / 4)
    assert summary.loc["split", "repeats"] == 2
    assert math.isnan(summary.loc["split", "peak_memory_bytes"])

"""The speedup intervals hold the true speedup at the rate they state, on simulated
sweeps of known noise: fixed numbers of repeats, heavy-tailed noise, a drifting
machine, and the adaptive schedule's stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as distributions

from nbreplica.bench.stats import (
    geometric_interval,
    median_interval,
    relative_width,
    sequential_level,
)

TRUE_SPEEDUP = 1.7
CONFIDENCE = 0.95
#: Simulated sweeps per case: the coverage is then known within about ±1%.
TRIALS = 2000
#: The lowest coverage accepted for 95% intervals (the simulation's own error aside).
LOWEST = 0.93


def paired_speedups(rng: np.random.Generator, rounds: int, spread: float,
                    heavy_tails: bool = False) -> np.ndarray:
    """Each round's speedup, a point's throughput over its round's baseline: both
    share the round's machine state (a drift of 30%, which the ratio divides out),
    and each has its own noise of relative spread ``spread`` (log-normal, or
    Student-t with 3 degrees of freedom on the log scale)."""
    drift = rng.normal(0.0, 0.3, rounds)

    def noise() -> np.ndarray:
        if heavy_tails:  # scaled to the same standard deviation: t(3) has sqrt(3)
            return spread * rng.standard_t(3, rounds) / np.sqrt(3.0)
        return rng.normal(0.0, spread, rounds)

    baseline = 1000.0 * np.exp(drift + noise())
    point = 1000.0 * TRUE_SPEEDUP * np.exp(drift + noise())
    return point / baseline


def holds(interval) -> bool:
    return interval.low <= TRUE_SPEEDUP <= interval.high


@pytest.mark.parametrize("heavy_tails", [False, True])
@pytest.mark.parametrize("repeats", [3, 6, 10])
def test_fixed_repeats_cover_at_the_stated_rate(repeats, heavy_tails):
    rng = np.random.default_rng(repeats + 100 * heavy_tails)
    intervals = [geometric_interval(paired_speedups(rng, repeats, 0.05, heavy_tails),
                                    CONFIDENCE) for _ in range(TRIALS)]
    rate = np.mean([holds(interval) for interval in intervals])
    assert intervals[0].coverage == CONFIDENCE
    assert LOWEST <= rate <= 0.975  # not bought with needless width either


def test_the_t_interval_is_narrower_than_the_order_statistic_one():
    rng = np.random.default_rng(7)
    runs = [paired_speedups(rng, 10, 0.05) for _ in range(200)]
    t_widths = [relative_width(geometric_interval(run), CONFIDENCE) for run in runs]
    order_widths = [relative_width(median_interval(run), CONFIDENCE) for run in runs]
    assert np.median(t_widths) < 0.8 * np.median(order_widths)


def adaptive_stops(speedups: np.ndarray, target: float, first: int = 3) -> np.ndarray:
    """For each simulated point (a row of per-round ``speedups``), how many rounds an
    adaptive sweep measures: ``first``, then one more at a time until the speedup
    interval's width is within ``target`` (what
    :class:`nbreplica.bench.schedule.Schedule` does) or every round is used (the
    budget). Vectorized over the points; a test below ties it to
    :func:`geometric_interval`."""
    logs = np.log(speedups)
    stops = np.full(len(logs), logs.shape[1])
    for rounds in range(logs.shape[1], first - 1, -1):
        low, high = log_bounds(logs[:, :rounds])
        stops[np.exp(high) - np.exp(low) <= target] = rounds
    return stops


def log_bounds(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the log bounds of the adaptive sweep's interval around its geometric
    mean, relative to it."""
    rounds = logs.shape[1]
    half = (distributions.t.ppf(0.5 + sequential_level(CONFIDENCE) / 2, rounds - 1)
            * logs.std(axis=1, ddof=1) / np.sqrt(rounds))
    return -half, half


def adaptive_run(seed: int, spread: float, trials: int = TRIALS, most: int = 25):
    rng = np.random.default_rng(seed)
    speedups = np.array([paired_speedups(rng, most, spread) for _ in range(trials)])
    return speedups, adaptive_stops(speedups, target=0.10)


def test_the_vectorized_stops_are_the_sweep_s():
    speedups, stops = adaptive_run(1, 0.04, trials=50)
    for run, stop in zip(speedups, stops):
        widths = [relative_width(geometric_interval(run[:rounds], CONFIDENCE,
                                                    sequential=True), CONFIDENCE)
                  for rounds in range(3, stop + 1)]
        assert all(width > 0.10 for width in widths[:-1])
        assert widths[-1] <= 0.10 or stop == len(run)


# Noise for which the 10% target takes about 5, 10 and 18 rounds: stopping once the
# repeats happen to agree matters most towards the budget's end.
@pytest.mark.parametrize("spread", [0.02, 0.04, 0.055])
def test_adaptive_stopping_keeps_the_stated_rate(spread):
    speedups, stops = adaptive_run(int(spread * 1000), spread)
    intervals = [geometric_interval(run[:stop], CONFIDENCE, sequential=True)
                 for run, stop in zip(speedups, stops)]
    assert np.mean([holds(interval) for interval in intervals]) >= LOWEST
    assert np.mean(stops < speedups.shape[1]) > 0.5  # stopping decided most of them

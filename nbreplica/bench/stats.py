"""Statistics of a sweep: intervals across repeats, reliability, scaling-law fits,
recommendations.

NumPy, pandas and SciPy; nothing here knows about TensorFlow or devices.

Intervals. A sweep repeats each point a few times (3 by default), and timing noise is
skewed and prone to outliers (a repeat that meets a busy machine). The interval of a
median here is therefore the distribution-free order-statistic interval
``[x(k), x(n - k + 1)]`` of the sorted repeats: whatever the noise's distribution, it
holds the population median with probability ``1 - 2 P(Binomial(n, 1/2) < k)``, known
exactly for every ``n`` (:func:`median_interval`). With 3 repeats the best it can do is
the range, at 75%; 95% takes 6 repeats. The coverage actually reached is reported
with every interval rather than claiming the level asked for. A Student-t interval
would need normal (or log-normal) noise, which 3 values cannot check, and a bootstrap
cannot resample 3 values into more than the range either.

Reliability (which figures to read as figures, and how many steps would do) follows
the rules of :mod:`nbreplica.bench.reliability`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as distributions

from nbreplica.bench import defaults
from nbreplica.bench.reliability import DISAGREE_REASON, MIN_REPEATS, assess
from nbreplica.strategy.names import BASELINE

#: Scaling laws fitted to the measured speedups: strong scaling (fixed global batch)
#: follows Amdahl, weak scaling (fixed per-device batch) follows Gustafson.
SCALING_LAWS = {"strong": "amdahl", "weak": "gustafson"}


@dataclass(frozen=True)
class Interval:
    """A median with the bounds of its interval and the probability that the interval
    holds the population median (all NaN where not estimable)."""

    median: float
    low: float
    high: float
    coverage: float = math.nan


def coverage(n: int, k: int) -> float:
    """Probability that ``[x(k), x(n - k + 1)]`` of ``n`` sorted values (1-based)
    holds the median of the distribution they were drawn from (any continuous one)."""
    return float(1.0 - 2.0 * distributions.binom.cdf(k - 1, n, 0.5))


def repeats_for(confidence: float) -> int:
    """The fewest repeats whose range holds the median with probability
    ``confidence``: ``1 - 2 / 2**n >= confidence``."""
    return max(2, math.ceil(math.log2(2.0 / (1.0 - confidence)) - 1e-12))


def median_interval(values: Iterable[float], confidence: float = defaults.CONFIDENCE) -> Interval:
    """The median of ``values`` and its order-statistic interval (module docstring).

    The interval is the narrowest ``[x(k), x(n - k + 1)]`` whose coverage reaches
    ``confidence``; with too few values for that, the range ``[min, max]``, whose
    lower coverage is reported in :attr:`Interval.coverage`. NaN values are ignored;
    with fewer than two values the bounds and coverage are NaN.
    """
    array = np.sort(np.asarray(list(values), dtype=float))
    array = array[np.isfinite(array)]
    if array.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    median = float(np.median(array))
    if array.size < 2:
        return Interval(median, math.nan, math.nan)
    n = array.size
    reaching = [k for k in range(1, n // 2 + 1) if coverage(n, k) >= confidence]
    k = max(reaching, default=1)
    return Interval(median, float(array[k - 1]), float(array[n - k]), coverage(n, k))


def fit_serial_fraction(
    devices: Sequence[float], speedups: Sequence[float], scaling: str
) -> float:
    """Least-squares serial fraction ``f`` of the scaling law for ``scaling``.

    Amdahl (strong scaling): ``S(n) = 1 / (f + (1 - f) / n)``, fitted as the line
    ``1/S - 1/n = f (1 - 1/n)``; Gustafson (weak scaling): ``S(n) = n - f (n - 1)``.
    Points with one device carry no information and are ignored. ``f`` is clipped to
    [0, 1]: a speedup below 1 (overhead beyond any serial part, as with emulated
    devices sharing one CPU) lies outside both laws and fits as ``f = 1``. NaN when
    no point has two or more devices.
    """
    law = _law(scaling)
    n = np.asarray(devices, dtype=float)
    s = np.asarray(speedups, dtype=float)
    keep = (n > 1) & np.isfinite(s) & (s > 0)
    n, s = n[keep], s[keep]
    if n.size == 0:
        return math.nan
    if law == "amdahl":
        slope_x, target = 1.0 - 1.0 / n, 1.0 / s - 1.0 / n
    else:
        slope_x, target = n - 1.0, n - s
    return float(np.clip(np.dot(slope_x, target) / np.dot(slope_x, slope_x), 0.0, 1.0))


def predict_speedup(serial_fraction: float, devices: float, scaling: str) -> float:
    """The speedup on ``devices`` devices that the fitted law predicts."""
    if _law(scaling) == "amdahl":
        return 1.0 / (serial_fraction + (1.0 - serial_fraction) / devices)
    return devices - serial_fraction * (devices - 1.0)


def recommend_devices(
    devices: Sequence[int], efficiencies: Sequence[float], threshold: float
) -> int:
    """The largest measured device count whose median efficiency is >= ``threshold``.

    One device (efficiency 1 by definition) is the answer when no larger count
    qualifies.
    """
    qualifying = [int(n) for n, e in zip(devices, efficiencies) if e >= threshold]
    return max(qualifying, default=1)


def _law(scaling: str) -> str:
    try:
        return SCALING_LAWS[scaling]
    except KeyError:
        raise ValueError(
            f"scaling must be one of {sorted(SCALING_LAWS)}. Received: scaling={scaling!r}"
        ) from None


SUMMARY_COLUMNS = [
    "sweep_id", "sweep_name", "model", "strategy", "devices", "repeats", "timed_steps",
    "samples_per_s", "samples_per_s_low", "samples_per_s_high",
    "speedup", "speedup_low", "speedup_high",
    "efficiency", "efficiency_low", "efficiency_high", "interval_coverage",
    "interval_width", "target_ci", "target_met",
    "reliable", "unreliable_reason", "steps_needed", "step_time_cv",
    "step_time_p50_s", "step_time_p90_s", "first_step_s",
    "peak_memory_bytes", "mean_utilization",
    "scaling", "global_batch_size", "per_device_batch_size", "params",
    "device_names", "emulated", "host", "tensorflow_version", "keras_version",
    "timestamp",
]


# Columns of a summary that take the first value of their group: they are constant
# within one (sweep, strategy, device count).
_CONSTANT_COLUMNS = (
    "sweep_name", "model", "params", "scaling", "global_batch_size",
    "per_device_batch_size", "device_names", "emulated", "host",
    "tensorflow_version", "keras_version",
)


def summarize(runs: pd.DataFrame, confidence: float = defaults.CONFIDENCE) -> pd.DataFrame:
    """One row per (sweep, strategy, device count) from per-repeat ``runs``.

    Medians across repeats with their intervals (``*_low``/``*_high``, method in the
    module docstring; ``interval_coverage`` is the probability they hold the median)
    for samples/s and speedup; efficiency is ``speedup / devices`` with its interval
    scaled alike. ``reliable``, ``unreliable_reason`` and ``steps_needed`` (timed
    steps per repeat that would do) follow :mod:`nbreplica.bench.reliability`;
    ``timed_steps`` is the fewest of any repeat and ``step_time_cv`` the step times'
    coefficient of variation pooled over repeats. ``interval_width`` is the speedup
    interval's full width relative to its median (:func:`relative_width`); where an
    adaptive sweep set a ``target_ci``, ``target_met`` says whether the width is
    within it at the ``confidence`` asked for (missing for the baseline, whose
    speedup is 1 by definition, and for fixed sweeps). Step-time percentiles and
    first-step time are medians of the per-repeat values; peak memory is the maximum
    and utilization the mean over repeats.
    """
    rows = []
    for (sweep_id, strategy, devices), group in runs.groupby(
        ["sweep_id", "strategy", "devices"], sort=False
    ):
        throughput = median_interval(group["samples_per_s"], confidence)
        speedup = median_interval(group["speedup"], confidence)
        cv = _pooled_step_time_cv(group)
        fewest_steps = group["steps"].min()  # unknown (NaN) only in damaged files
        row = {"sweep_id": sweep_id, "strategy": strategy, "devices": int(devices)}
        row.update({column: group[column].iloc[0] for column in _CONSTANT_COLUMNS})
        row.update(
            repeats=len(group),
            timed_steps=int(fewest_steps) if pd.notna(fewest_steps) else 0,
            samples_per_s=throughput.median,
            samples_per_s_low=throughput.low,
            samples_per_s_high=throughput.high,
            speedup=speedup.median,
            speedup_low=speedup.low,
            speedup_high=speedup.high,
            efficiency=speedup.median / devices,
            efficiency_low=speedup.low / devices,
            efficiency_high=speedup.high / devices,
            interval_coverage=throughput.coverage,
            interval_width=relative_width(speedup, confidence),
            target_ci=_target(group),
            step_time_cv=cv,
            step_time_p50_s=group["step_time_p50_s"].median(),
            step_time_p90_s=group["step_time_p90_s"].median(),
            first_step_s=group["first_step_s"].median(),
            peak_memory_bytes=group["peak_memory_bytes"].max(),
            mean_utilization=group["mean_utilization"].mean(),
            timestamp=group["timestamp"].max(),
        )
        row["assessment"] = assess(
            timed_steps=row["timed_steps"], step_time_cv=cv, repeats=len(group),
            relative_widths=[_span(throughput), _span(speedup)],
            interval_coverage=throughput.coverage, confidence=confidence,
        )
        row["target_met"] = (
            pd.NA if strategy == BASELINE or math.isnan(row["target_ci"])
            else bool(row["interval_width"] <= row["target_ci"])
        )
        rows.append(row)
    _account_for_baselines(rows)
    for row in rows:
        assessment = row.pop("assessment")
        row.update(reliable=assessment.reliable, unreliable_reason=assessment.reason,
                   steps_needed=assessment.steps_needed)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _pooled_step_time_cv(group: pd.DataFrame) -> float:
    """Root-mean-square of the repeats' step-time coefficients of variation (standard
    deviation over the mean step time); NaN where no repeat recorded a spread."""
    if "step_time_sd_s" not in group:
        return math.nan  # runs from before the spread was recorded
    mean_step_s = group["global_batch_size"] / group["samples_per_s"]
    cvs = (group["step_time_sd_s"].astype(float) / mean_step_s).dropna()
    return float(np.sqrt(np.mean(cvs**2))) if len(cvs) else math.nan


def _span(interval: Interval) -> float:
    return (interval.high - interval.low) / interval.median


def relative_width(interval: Interval, confidence: float) -> float:
    """The full width of ``interval`` relative to its median; ``inf`` when it holds
    the median with a probability below ``confidence`` (too few repeats), NaN when
    there is no interval."""
    if interval.coverage < confidence:
        return math.inf
    return _span(interval)


def widths_by_kind(summary: pd.DataFrame) -> dict[tuple[str, int], float]:
    """``interval_width`` of every (strategy, device count) in ``summary`` (one
    sweep's), NaN widths left out."""
    return {(strategy, int(devices)): float(width) for strategy, devices, width in zip(
        summary["strategy"], summary["devices"], summary["interval_width"])
        if not math.isnan(width)}


def _target(group: pd.DataFrame) -> float:
    """The group's target width (NaN for fixed sweeps and older files)."""
    if "target_ci" not in group:
        return math.nan
    return float(pd.to_numeric(group["target_ci"], errors="coerce").max())


def _account_for_baselines(rows: list[dict]) -> None:
    """Mark every speedup whose sweep's one-device baseline is unreliable."""
    baselines = {row["sweep_id"]: row["assessment"] for row in rows
                 if row["strategy"] == BASELINE}
    for row in rows:
        baseline = baselines.get(row["sweep_id"])
        if row["strategy"] != BASELINE and baseline is not None:
            row["assessment"] = row["assessment"].with_unreliable_baseline(baseline)


def scaling_table(
    summary: pd.DataFrame,
    threshold: float = defaults.EFFICIENCY_THRESHOLD,
    predict_at: Sequence[int] = (16, 32),
) -> pd.DataFrame:
    """Per (sweep, strategy): fitted law, serial fraction, predictions, recommendation.

    The single-device baseline row (strategy ``"single"``) joins every strategy's
    curve at one device. A curve with an unreliable point is not fitted: its serial
    fraction and predictions are NaN, its recommendation missing, ``reliable`` is
    ``False`` and ``unreliable_reason`` says which points and why.
    """
    rows = []
    baselines = summary[summary["strategy"] == BASELINE]
    for (sweep_id, strategy), group in summary.groupby(["sweep_id", "strategy"], sort=False):
        if strategy == BASELINE:
            continue
        curve = pd.concat([baselines[baselines["sweep_id"] == sweep_id], group])
        scaling = str(group["scaling"].iloc[0])
        reason = _unfitted_reason(curve)
        fraction = (fit_serial_fraction(curve["devices"], curve["speedup"], scaling)
                    if not reason else math.nan)
        row = {
            "sweep_id": sweep_id,
            "sweep_name": group["sweep_name"].iloc[0],
            "strategy": strategy,
            "law": _law(scaling),
            "serial_fraction": fraction,
        }
        for n in predict_at:
            row[f"predicted_speedup_{n}"] = predict_speedup(fraction, n, scaling)
        row["efficiency_threshold"] = threshold
        row["recommended_devices"] = None if reason else recommend_devices(
            curve["devices"], curve["efficiency"], threshold
        )
        row.update(reliable=not reason, unreliable_reason=reason)
        rows.append(row)
    columns = ["sweep_id", "sweep_name", "strategy", "law", "serial_fraction",
               *(f"predicted_speedup_{n}" for n in predict_at),
               "efficiency_threshold", "recommended_devices", "reliable",
               "unreliable_reason"]
    return pd.DataFrame(rows, columns=columns).astype({"recommended_devices": "Int64"})


def _unfitted_reason(curve: pd.DataFrame) -> str:
    """Why a curve's points cannot carry a fit, and what would: e.g. ``"3 of 3 points
    unreliable: time ≥ 20 steps/repeat (now 2), run ≥ 3 repeats (now 2)"``; empty when
    every point is reliable."""
    unreliable = curve[~curve["reliable"].astype(bool)]
    if unreliable.empty:
        return ""
    fixes = []
    short = unreliable[unreliable["timed_steps"] < unreliable["steps_needed"]]
    if not short.empty:
        fixes.append(f"time ≥ {short['steps_needed'].max()} steps/repeat "
                     f"(now {short['timed_steps'].min()})")
    if (unreliable["repeats"] < MIN_REPEATS).any():
        fixes.append(f"run ≥ {MIN_REPEATS} repeats "
                     f"(now {unreliable['repeats'].min()})")
    if unreliable["unreliable_reason"].str.contains(DISAGREE_REASON).any():
        fixes.append(DISAGREE_REASON)
    return f"{len(unreliable)} of {len(curve)} points unreliable: {', '.join(fixes)}"

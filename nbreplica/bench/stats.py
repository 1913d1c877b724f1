"""Statistics of a sweep: intervals across repeats, reliability, scaling-law fits
(:mod:`nbreplica.bench.laws`), recommendations.

NumPy, pandas and SciPy; nothing here knows about TensorFlow or devices.

Intervals. A sweep repeats each point a few times (3 by default, more where an
adaptive sweep needs them), and every repeat's speedup is the ratio of its throughput
to that of the one-device baseline measured in the same round, minutes apart at most:
the pair shares the machine's state, so slow drift divides out. Timing noise is
relative (a busy moment slows a step by a fraction), so figures are taken on the log
scale: a figure is the geometric mean of its repeats and its interval the Student-t
interval of their mean log, ``exp(mean ± t(m - 1) · sd / sqrt(m))`` over ``m`` repeats
(:func:`geometric_interval`). It reaches the confidence asked for from 2 repeats on,
where the distribution-free order-statistic interval of a median
(:func:`median_interval`) needs 6 repeats for 95% and stays wider at every number of
repeats. An adaptive sweep, which stops repeating a point once its interval is
narrow enough, takes its intervals at half the error rate (97.5% for 95%,
:func:`sequential_level`): stopping when the repeats happen to agree would otherwise
leave its 95% intervals holding the true speedup only about 90% of the time. The
price of the t interval is the assumption that log timings are roughly normal;
simulated sweeps (``tests/bench/test_sweep_coverage.py``) check that the intervals
hold the true speedup at the stated rate, with heavy-tailed noise, a drifting machine
and adaptive stopping.

Reliability (which figures to read as figures, and how many steps would do) follows
the rules of :mod:`nbreplica.bench.reliability`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as distributions

from nbreplica.bench import defaults
from nbreplica.bench.laws import USL, choose_law, law_speedup
from nbreplica.bench.reliability import DISAGREE_REASON, MIN_REPEATS, assess
from nbreplica.strategy.names import BASELINE

@dataclass(frozen=True)
class Interval:
    """A figure (a median or a geometric mean) with the bounds of its interval and the
    probability that the interval holds the true value (all NaN where not
    estimable)."""

    median: float
    low: float
    high: float
    coverage: float = math.nan


def coverage(n: int, k: int) -> float:
    """Probability that ``[x(k), x(n - k + 1)]`` of ``n`` sorted values (1-based)
    holds the median of the distribution they were drawn from (any continuous one)."""
    return float(1.0 - 2.0 * distributions.binom.cdf(k - 1, n, 0.5))


def median_interval(values: Iterable[float], confidence: float = defaults.CONFIDENCE) -> Interval:
    """The median of ``values`` and its distribution-free order-statistic interval.

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


def geometric_interval(values: Iterable[float], confidence: float = defaults.CONFIDENCE,
                       *, sequential: bool = False) -> Interval:
    """The geometric mean of ``values`` and its Student-t interval on the log scale
    (module docstring), holding the true value with probability ``confidence``.

    ``sequential``: the values come from an adaptive sweep, which stops repeating a
    point once its interval is narrow enough. Stopping when the repeats happen to
    agree makes the plain t interval too narrow (about 92% coverage for 95% asked
    for, simulated), so the interval is then taken at the t quantile of
    :func:`sequential_level`, which restores the coverage asked for
    (``tests/bench/test_sweep_coverage.py``).

    Values that are not finite and positive are ignored; with fewer than two left the
    bounds and coverage are NaN. :attr:`Interval.coverage` is ``confidence``.
    """
    array = np.asarray(list(values), dtype=float)
    logs = np.log(array[np.isfinite(array) & (array > 0)])
    if logs.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    center = float(logs.mean())
    if logs.size < 2:
        return Interval(math.exp(center), math.nan, math.nan)
    level = sequential_level(confidence) if sequential else confidence
    half = (distributions.t.ppf(0.5 + level / 2.0, logs.size - 1)
            * logs.std(ddof=1) / math.sqrt(logs.size))
    return Interval(math.exp(center), math.exp(center - half), math.exp(center + half),
                    confidence)


def sequential_level(confidence: float) -> float:
    """The level an adaptive sweep's intervals are computed at so that they hold the
    true value with probability ``confidence``: half the error rate (97.5% for 95%)."""
    return 1.0 - (1.0 - confidence) / 2.0


def recommend_devices(
    devices: Sequence[int], efficiencies: Sequence[float], threshold: float
) -> int:
    """The largest measured device count whose median efficiency is >= ``threshold``.

    One device (efficiency 1 by definition) is the answer when no larger count
    qualifies.
    """
    qualifying = [int(n) for n, e in zip(devices, efficiencies) if e >= threshold]
    return max(qualifying, default=1)


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

    Geometric means across repeats with their intervals (``*_low``/``*_high``, method
    in the module docstring; ``interval_coverage`` is their confidence level) for
    samples/s and speedup; efficiency is ``speedup / devices`` with its interval
    scaled alike. ``reliable``, ``unreliable_reason`` and ``steps_needed`` (timed
    steps per repeat that would do) follow :mod:`nbreplica.bench.reliability`;
    ``timed_steps`` is the fewest of any repeat and ``step_time_cv`` the step times'
    coefficient of variation pooled over repeats. ``interval_width`` is the speedup
    interval's full width relative to its median (:func:`relative_width`); where an
    adaptive sweep set a ``target_ci``, ``target_met`` says whether the width is
    within it (missing for the baseline, whose speedup is 1 by definition, and for
    fixed sweeps). Step-time percentiles and
    first-step time are medians of the per-repeat values; peak memory is the maximum
    and utilization the mean over repeats.
    """
    rows = []
    for (sweep_id, strategy, devices), group in runs.groupby(
        ["sweep_id", "strategy", "devices"], sort=False
    ):
        target = _target(group)
        sequential = not math.isnan(target)
        throughput = geometric_interval(group["samples_per_s"], confidence,
                                        sequential=sequential)
        speedup = geometric_interval(group["speedup"], confidence, sequential=sequential)
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
            target_ci=target,
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
    """Per (sweep, strategy): the scaling law its speedups support, its parameters,
    peak and predictions, and the recommended device count.

    The single-device baseline row (strategy ``"single"``) joins every strategy's
    curve at one device. Laws are fitted and chosen as :mod:`nbreplica.bench.laws`
    says. Columns: ``law`` (the law chosen; missing when none fits),
    ``serial_fraction`` (the fitted ``f`` of Amdahl's law for strong scaling,
    Gustafson's for weak), ``alpha`` and ``beta`` (the USL's, once 2 device counts
    beyond one determine them), ``fit_error`` (the chosen law's largest deviation
    from a measured speedup, relative to it), ``peak_devices`` (where the chosen
    law's speedup peaks; ``inf``: it keeps rising), ``peak_within_measured`` (the
    peak lies within the measured device counts rather than beyond them), the
    chosen law's ``predicted_speedup_<n>``, ``efficiency_threshold`` and
    ``recommended_devices`` (from the measured efficiencies), ``reliable`` (a law
    fits reliable points) and ``unreliable_reason``.

    A curve with an unreliable point is not fitted: every figure of its row is
    NaN, its recommendation missing, and ``unreliable_reason`` says which points
    and why. A curve no law fits has no law, peak or predictions (nothing is
    extrapolated from a law the points contradict); ``unreliable_reason`` says how
    far each law missed.
    """
    rows = []
    baselines = summary[summary["strategy"] == BASELINE]
    for (sweep_id, strategy), group in summary.groupby(["sweep_id", "strategy"], sort=False):
        if strategy == BASELINE:
            continue
        curve = pd.concat([baselines[baselines["sweep_id"] == sweep_id], group])
        row = {"sweep_id": sweep_id, "sweep_name": group["sweep_name"].iloc[0],
               "strategy": strategy}
        row.update(_fitted(curve, str(group["scaling"].iloc[0]), predict_at))
        row["efficiency_threshold"] = threshold
        row["recommended_devices"] = None if row.pop("unfitted") else recommend_devices(
            curve["devices"], curve["efficiency"], threshold)
        rows.append(row)
    columns = ["sweep_id", "sweep_name", "strategy", "law", "serial_fraction", "alpha",
               "beta", "fit_error", "peak_devices", "peak_within_measured",
               *(f"predicted_speedup_{n}" for n in predict_at),
               "efficiency_threshold", "recommended_devices", "reliable",
               "unreliable_reason"]
    return pd.DataFrame(rows, columns=columns).astype(
        {"recommended_devices": "Int64", "peak_within_measured": "boolean"})


def _fitted(curve: pd.DataFrame, scaling: str, predict_at: Sequence[int]) -> dict:
    """The law columns of :func:`scaling_table` for one curve, and ``unfitted``:
    whether its points were too unreliable to fit."""
    predictions = {f"predicted_speedup_{n}": math.nan for n in predict_at}
    row = {"law": None, "serial_fraction": math.nan, "alpha": math.nan,
           "beta": math.nan, "fit_error": math.nan, "peak_devices": math.nan,
           "peak_within_measured": pd.NA, **predictions}
    reason = _unfitted_reason(curve)
    if reason:
        return {**row, "reliable": False, "unreliable_reason": reason, "unfitted": True}
    choice = choose_law(scaling, curve["devices"], curve["speedup"], allowed_deviations(curve))
    if choice.simple is not None:
        row["serial_fraction"] = choice.simple.params[0]
    if choice.usl is not None and choice.usl.points >= 2:
        row["alpha"], row["beta"] = choice.usl.params
    chosen = choice.chosen
    if chosen is not None:
        peak = chosen.peak_devices
        row.update(law=chosen.law, fit_error=chosen.error, peak_devices=peak,
                   peak_within_measured=bool(peak <= curve["devices"].max()))
        row.update({f"predicted_speedup_{n}": float(chosen.speedup(n)) for n in predict_at})
    return {**row, "reliable": chosen is not None, "unreliable_reason": choice.misfit(),
            "unfitted": False}


def allowed_deviations(curve: pd.DataFrame) -> np.ndarray:
    """Each point's speedup interval half-width on the log scale (the wider side;
    NaN without an interval): how far a fitting law may pass from it (see
    :mod:`nbreplica.bench.laws`)."""
    speedup = curve["speedup"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.fmax(np.log(curve["speedup_high"].to_numpy(dtype=float) / speedup),
                       np.log(speedup / curve["speedup_low"].to_numpy(dtype=float)))


def scaling_curve(fit: pd.Series, devices: ArrayLike) -> np.ndarray:
    """The speedup on ``devices`` devices of the law chosen in a :func:`scaling_table`
    row ``fit``.

    Raises:
        ValueError: the row has no law (none fits, or its points are unreliable).
    """
    if pd.isna(fit["law"]):
        raise ValueError("This row of the scaling table has no law: none fits its points, "
                         f"or they are unreliable. Received: {fit['unreliable_reason']!r}")
    params = ((fit["alpha"], fit["beta"]) if fit["law"] == USL
              else (fit["serial_fraction"],))
    return law_speedup(str(fit["law"]), params, devices)


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

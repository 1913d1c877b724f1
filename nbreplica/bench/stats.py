"""Statistics of a sweep: intervals across repeats, scaling-law fits, recommendations.

Pure NumPy/pandas; nothing here knows about TensorFlow or devices.

Intervals. A sweep repeats each point a few times (3 by default), so every interval
here is built for small samples: a Student-t interval on the *logarithm* of the
per-repeat values. Timing noise is multiplicative and right-skewed, which the log
scale absorbs; under log-normal noise ``exp(mean(log x))`` is the population median,
so the interval is a confidence interval for the median, and the t quantile (4.30 for
3 repeats) keeps it honest about how little 3 values say. The point estimate shown is
the sample median; in the rare case that one outlying repeat pulls the geometric mean
far enough that the median falls outside the t interval, the interval is widened to
include it (only ever wider, so never less than the stated confidence).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Scaling laws fitted to the measured speedups: strong scaling (fixed global batch)
#: follows Amdahl, weak scaling (fixed per-device batch) follows Gustafson.
SCALING_LAWS = {"strong": "amdahl", "weak": "gustafson"}


@dataclass(frozen=True)
class Interval:
    """A median with the bounds of its confidence interval (NaN when not estimable)."""

    median: float
    low: float
    high: float


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1. Received: p={p!r}")
    if not df > 0:
        raise ValueError(f"df must be positive. Received: df={df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):  # bisection: the CDF is monotone, 200 halvings is exact enough
        mid = 0.5 * (low + high)
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (modified Lentz), as in Numerical Recipes."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below this
        return 1.0 - _regularized_beta(1.0 - x, b, a)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def median_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """The median of positive ``values`` and its log-scale Student-t interval.

    See the module docstring for the method. With fewer than two finite values the
    bounds are NaN: one repeat says nothing about run-to-run spread.

    Raises:
        ValueError: a value is zero or negative (rates and ratios never are).
    """
    array = np.asarray(list(values), dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    if np.any(array <= 0):
        raise ValueError(
            f"Intervals are computed on the log scale and need positive values. "
            f"Received: values={array.tolist()!r}"
        )
    median = float(np.median(array))
    if array.size < 2:
        return Interval(median, math.nan, math.nan)
    logs = np.log(array)
    half = t_quantile(0.5 + confidence / 2.0, array.size - 1) * logs.std(ddof=1)
    half /= math.sqrt(array.size)
    center = logs.mean()
    return Interval(
        median,
        min(math.exp(center - half), median),
        max(math.exp(center + half), median),
    )


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
    "sweep_id", "sweep_name", "model", "strategy", "devices", "repeats",
    "samples_per_s", "samples_per_s_low", "samples_per_s_high",
    "speedup", "speedup_low", "speedup_high",
    "efficiency", "efficiency_low", "efficiency_high",
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


def summarize(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (sweep, strategy, device count) from per-repeat ``runs``.

    Medians across repeats with their ``confidence`` intervals (``*_low``/``*_high``,
    method in the module docstring) for samples/s and speedup; efficiency is
    ``speedup / devices`` with its interval scaled alike. Step-time percentiles and
    first-step time are medians of the per-repeat values; peak memory is the maximum
    and utilization the mean over repeats.
    """
    rows = []
    for (sweep_id, strategy, devices), group in runs.groupby(
        ["sweep_id", "strategy", "devices"], sort=False
    ):
        throughput = median_interval(group["samples_per_s"], confidence)
        speedup = median_interval(group["speedup"], confidence)
        row = {"sweep_id": sweep_id, "strategy": strategy, "devices": int(devices)}
        row.update({column: group[column].iloc[0] for column in _CONSTANT_COLUMNS})
        row.update(
            repeats=len(group),
            samples_per_s=throughput.median,
            samples_per_s_low=throughput.low,
            samples_per_s_high=throughput.high,
            speedup=speedup.median,
            speedup_low=speedup.low,
            speedup_high=speedup.high,
            efficiency=speedup.median / devices,
            efficiency_low=speedup.low / devices,
            efficiency_high=speedup.high / devices,
            step_time_p50_s=group["step_time_p50_s"].median(),
            step_time_p90_s=group["step_time_p90_s"].median(),
            first_step_s=group["first_step_s"].median(),
            peak_memory_bytes=group["peak_memory_bytes"].max(),
            mean_utilization=group["mean_utilization"].mean(),
            timestamp=group["timestamp"].max(),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def scaling_table(
    summary: pd.DataFrame,
    threshold: float = 0.7,
    predict_at: Sequence[int] = (16, 32),
) -> pd.DataFrame:
    """Per (sweep, strategy): fitted law, serial fraction, predictions, recommendation.

    The single-device baseline row (strategy ``"single"``) joins every strategy's
    curve at one device.
    """
    rows = []
    baselines = summary[summary["strategy"] == "single"]
    for (sweep_id, strategy), group in summary.groupby(["sweep_id", "strategy"], sort=False):
        if strategy == "single":
            continue
        curve = pd.concat([baselines[baselines["sweep_id"] == sweep_id], group])
        scaling = str(group["scaling"].iloc[0])
        fraction = fit_serial_fraction(curve["devices"], curve["speedup"], scaling)
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
        row["recommended_devices"] = recommend_devices(
            curve["devices"], curve["efficiency"], threshold
        )
        rows.append(row)
    columns = ["sweep_id", "sweep_name", "strategy", "law", "serial_fraction",
               *(f"predicted_speedup_{n}" for n in predict_at),
               "efficiency_threshold", "recommended_devices"]
    return pd.DataFrame(rows, columns=columns)

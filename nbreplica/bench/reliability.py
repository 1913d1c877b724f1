"""When a sweep's figure is stable enough to read as a figure, and what would make it so.

A summary row (one strategy on one device count) is marked unreliable, with the
reasons said in words, when:

- its repeats timed too few steps: fewer than :data:`MIN_TIMED_STEPS`, or, while its
  repeats are too few for an interval at the confidence asked for, fewer than it
  takes for the mean step time's confidence interval to narrow to
  ±\\ :data:`STEP_PRECISION` of it, given the spread of the step times observed
  (:func:`steps_needed`). Once the repeats give such an interval, it measures the
  repeats' spread itself, whatever its cause: short repeats then only widen it;
- it has fewer than :data:`MIN_REPEATS` repeats (the spread of two values says
  little about the next: their interval is as wide as the Student-t quantile of one
  degree of freedom, 12.7, makes it);
- its interval across repeats is wider than the figure itself (relative width above
  :data:`MAX_RELATIVE_WIDTH`): the repeats disagree by more than they measure;
- for the speedup of more than one device: its sweep's one-device baseline is
  unreliable, since every speedup is divided by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats as distributions

#: Fewer timed steps per repeat leave the step-time spread itself unknown.
MIN_TIMED_STEPS = 10
#: Fewer repeats give no interval worth the name (see ``stats.median_interval``).
MIN_REPEATS = 3
#: The relative half-width the mean step time's interval must reach in every repeat.
STEP_PRECISION = 0.10
#: An interval wider than this fraction of its figure does not locate the figure.
MAX_RELATIVE_WIDTH = 1.0

#: How long the timed steps of a point with calibrated steps last at least: long
#: enough that a point's fixed costs (building, tracing, warm-up) do not dominate it
#: and that the machine's short hiccups average out within a repeat.
MIN_TIMED_SECONDS = 1.0
#: Calibrated steps never exceed this, however fast a step is.
MAX_CALIBRATED_STEPS = 2000

BASELINE_REASON = "baseline unreliable"
DISAGREE_REASON = "repeats disagree: interval wider than the figure"


def relative_half_width(steps: int, cv: float, confidence: float) -> float:
    """Half-width of the Student-t ``confidence`` interval of a mean over ``steps``
    step times whose coefficient of variation is ``cv``, relative to that mean."""
    quantile = distributions.t.ppf(0.5 + confidence / 2.0, steps - 1)
    return float(quantile * cv / math.sqrt(steps))


def steps_needed(cv: float, confidence: float) -> int:
    """Timed steps per repeat for the mean step time to be known within
    ±\\ :data:`STEP_PRECISION` at ``confidence``, given the step times' coefficient of
    variation ``cv``: the smallest ``n >= MIN_TIMED_STEPS`` with
    ``t(n - 1) * cv / sqrt(n) <= STEP_PRECISION``. :data:`MIN_TIMED_STEPS` when
    ``cv`` is unknown (NaN: fewer than two steps were timed, or an older results file).
    """
    if not math.isfinite(cv) or cv <= 0:
        return MIN_TIMED_STEPS
    # The normal quantile is below every t quantile, so this n is a lower bound.
    normal = distributions.norm.ppf(0.5 + confidence / 2.0)
    steps = max(MIN_TIMED_STEPS, math.ceil((normal * cv / STEP_PRECISION) ** 2))
    while relative_half_width(steps, cv, confidence) > STEP_PRECISION:
        steps += 1
    return steps


def calibrated_steps(mean_step_s: float, cv: float, confidence: float) -> int:
    """Timed steps per point for a step of ``mean_step_s`` seconds whose durations
    vary by ``cv``: as many as :func:`steps_needed` asks for, and enough to last
    :data:`MIN_TIMED_SECONDS`, at most :data:`MAX_CALIBRATED_STEPS`."""
    for_time = math.ceil(MIN_TIMED_SECONDS / mean_step_s) if mean_step_s > 0 else 0
    return min(MAX_CALIBRATED_STEPS, max(steps_needed(cv, confidence), for_time))


@dataclass(frozen=True)
class Assessment:
    """Whether a summary row is reliable: the reasons it is not (none when it is)
    and the timed steps per repeat that would do."""

    steps_needed: int
    reasons: tuple[str, ...]

    @property
    def reliable(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> str:
        """The reasons as one line, e.g. ``"2 timed steps/repeat, time ≥ 10;
        2 repeats, run ≥ 3"``; empty when reliable."""
        return "; ".join(self.reasons)

    def with_unreliable_baseline(self, baseline: Assessment) -> Assessment:
        """This row's assessment once its speedup's baseline is taken into account
        (the baseline's own row says what it needs)."""
        if baseline.reliable:
            return self
        return Assessment(self.steps_needed, (*self.reasons, BASELINE_REASON))


def assess(*, timed_steps: int, step_time_cv: float, repeats: int,
           relative_widths: Iterable[float], interval_coverage: float,
           confidence: float) -> Assessment:
    """The rules of the module docstring applied to one summary row.

    Args:
        timed_steps: the fewest timed steps of the row's repeats.
        step_time_cv: the step times' coefficient of variation, pooled over repeats
            (NaN when unknown).
        repeats: how many repeats the row has.
        relative_widths: ``(high - low) / median`` of the row's intervals (NaN where
            there is no interval).
        interval_coverage: the probability that the row's intervals hold the true
            figure (NaN where there is no interval).
        confidence: the level of the intervals.
    """
    needed = (MIN_TIMED_STEPS if interval_coverage >= confidence
              else steps_needed(step_time_cv, confidence))
    reasons = []
    if timed_steps < needed:
        reasons.append(f"{_count(timed_steps, 'timed step')}/repeat, time ≥ {needed}")
    if repeats < MIN_REPEATS:
        reasons.append(f"{_count(repeats, 'repeat')}, run ≥ {MIN_REPEATS}")
    if any(width > MAX_RELATIVE_WIDTH for width in relative_widths):
        reasons.append(DISAGREE_REASON)
    return Assessment(needed, tuple(reasons))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"

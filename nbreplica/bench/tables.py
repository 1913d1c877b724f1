"""A sweep's summary as a table: formatted cells and recommendations, rendered as text
that fits a terminal (:mod:`nbreplica.bench.terminal`) or as HTML (notebooks, the saved
report page).

Each row's reliability is said in words: ``"±4%"``, half its interval's width relative
to its figure (the speedup; the throughput for the one-device baseline, whose speedup
is 1 by definition); ``"±24%: repeats disagree"`` where the interval is wider than the
sweep's target (:data:`~nbreplica.bench.defaults.TARGET_CI` for a fixed sweep); or
``"unreliable: <why and what would do>"``, and then the figure is printed without its
interval, marked ``(unreliable)``. In an adaptive sweep's HTML table, each speedup's
interval width is shown against the target, and a note names the points that did not
reach it. The terminal table shows the figures that matter and leaves out, by name,
the columns that do not fit; the HTML table, :attr:`SweepResult.frame` and
``summary.csv`` have every column.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from nbreplica.bench import defaults, terminal
from nbreplica.bench.progress import describe_width
from nbreplica.strategy.names import BASELINE, MULTIWORKER, WORKERS_LABEL

NO_POINTS = "No point was measured."
UNRELIABLE = "unreliable"
DISAGREE = "repeats disagree"
NOT_AVAILABLE = "n/a"
INTERVAL_WIDTH = "interval width"
_GIB = 1024**3
#: Columns of the terminal table that make way, highest first, when it is too wide.
_TERMINAL_RANKS = {"peak mem GiB": 1, "util %": 2, "step p50/p90 ms": 3, "first step s": 4}
_LEFT_ALIGNED = ("strategy", "reliability")


def summary_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``summary`` (:attr:`SweepResult.frame`) a reader needs, as text:
    figures with their intervals in brackets (or marked unreliable), the speedup
    interval's width against an adaptive sweep's target, efficiency in percent, step
    times in ms, peak memory in GiB (``"n/a"`` where a device reported nothing), and
    each row's reliability in words (module docstring)."""
    reliable = summary["reliable"].astype(bool)
    cells = pd.DataFrame({
        "strategy": summary["strategy"],
        "devices": summary["devices"].astype(str),
        "samples/s": [_figure(v, lo, hi, ok, "{:,.0f}") for v, lo, hi, ok in zip(
            summary["samples_per_s"], summary["samples_per_s_low"],
            summary["samples_per_s_high"], reliable)],
        "speedup": [_figure(v, lo, hi, ok, "{:.2f}") for v, lo, hi, ok in zip(
            summary["speedup"], summary["speedup_low"], summary["speedup_high"], reliable)],
        "efficiency": [f"{e:.0%}" for e in summary["efficiency"]],
        "step p50/p90 ms": [f"{p50 * 1e3:.1f}/{p90 * 1e3:.1f}" for p50, p90 in zip(
            summary["step_time_p50_s"], summary["step_time_p90_s"])],
        "first step s": [f"{t:.2f}" for t in summary["first_step_s"]],
        "peak mem GiB": [_optional(m / _GIB if pd.notna(m) else None, "{:.2f}")
                         for m in summary["peak_memory_bytes"]],
        "util %": [_optional(u, "{:.0f}") for u in summary["mean_utilization"]],
        "reliability": reliability_words(summary),
    })
    if has_target(summary):
        cells.insert(4, INTERVAL_WIDTH, [
            "" if pd.isna(met) else
            _width_against(width, target, met)
            for width, target, met in zip(summary["interval_width"], summary["target_ci"],
                                          summary["target_met"])
        ])
    return cells


def reliability_words(summary: pd.DataFrame) -> list[str]:
    """Each row's reliability in words: ``"±4%"``, ``"±24%: repeats disagree"`` or
    ``"unreliable: <reason>"`` (module docstring)."""
    targets = pd.to_numeric(summary["target_ci"], errors="coerce").fillna(defaults.TARGET_CI)
    return [
        _spread_words(half, target) if ok else f"{UNRELIABLE}: {reason}"
        for half, target, ok, reason in zip(half_widths(summary), targets,
                                            summary["reliable"].astype(bool),
                                            summary["unreliable_reason"])
    ]


def half_widths(summary: pd.DataFrame) -> pd.Series:
    """Half of each row's interval width relative to its figure: the speedup's, or
    for the baseline the throughput's; NaN where a row has no interval."""
    baseline = summary["strategy"] == BASELINE

    def figure(column: str) -> pd.Series:
        return summary[f"samples_per_s{column}"].where(baseline, summary[f"speedup{column}"])

    return (figure("_high") - figure("_low")) / figure("") / 2


def _spread_words(half_width: float, target: float) -> str:
    if math.isnan(half_width):
        return "no interval"
    spread = "±<1%" if half_width < 0.005 else f"±{half_width:.0%}"
    return spread if 2 * half_width <= target else f"{spread}: {DISAGREE}"


def _width_against(width: float, target: float, met: bool) -> str:
    """e.g. ``"7%"`` (met), ``"14% > 10% target"``, ``"too few repeats (target 10%)"``."""
    if met:
        return describe_width(width)
    if width == math.inf:
        return f"{describe_width(width)} (target {target:.0%})"
    return f"{describe_width(width)} > {target:.0%} target"


def has_target(summary: pd.DataFrame) -> bool:
    """Whether any row of ``summary`` comes from an adaptive sweep (a target width)."""
    return bool(summary["target_ci"].notna().any())


def missed_target_note(summary: pd.DataFrame) -> str | None:
    """The points of ``summary`` whose speedup interval is wider than their sweep's
    target, with the widths reached; ``None`` when there are none."""
    missed = summary[summary["target_met"].eq(False)]
    if missed.empty:
        return None
    points = ", ".join(
        f"{point} {describe_width(row.interval_width)} (target {row.target_ci:.0%})"
        for point, row in zip(_points(summary, missed), missed.itertuples(index=False))
    )
    return f"Speedup intervals wider than the target when the time budget ended: {points}"


def unreliable_notes(summary: pd.DataFrame) -> list[str]:
    """One line per unreliable row of ``summary``: why, and what would do."""
    unreliable = summary[~summary["reliable"].astype(bool)]
    return [f"Unreliable {point}: {reason}" for point, reason in
            zip(_points(summary, unreliable), unreliable["unreliable_reason"])]


def _points(summary: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """``rows`` of ``summary`` named as points, e.g. ``"split×4"``; with the sweep's
    name first when ``summary`` holds several sweeps."""
    several_sweeps = summary["sweep_id"].nunique() > 1
    return [f"{f'{name} ' if several_sweeps else ''}{strategy}×{devices}"
            for name, strategy, devices in zip(rows["sweep_name"], rows["strategy"],
                                               rows["devices"])]


def interval_note(summary: pd.DataFrame, confidence: float) -> str | None:
    """What the bracketed intervals of ``summary`` and the ``±`` of its reliability
    words mean: the probability that each interval holds the true figure (said to
    fall short of ``confidence`` where it does); ``None`` when no interval is shown."""
    shown = summary[summary["reliable"].astype(bool) & summary["interval_coverage"].notna()]
    if shown.empty:
        return None
    levels = sorted(set(shown["interval_coverage"].astype(float)))
    note = ("[low–high]: the interval across repeats that holds the true figure with "
            f"probability {', '.join(f'{level:.0%}' for level in levels)}; ±: half its "
            "width, relative to the speedup (to samples/s for the baseline)")
    if levels[0] < confidence:
        note += f"; short of {confidence:.0%} where the repeats are too few"
    return note


def recommendations(scaling: pd.DataFrame) -> list[str]:
    """One line per strategy of ``scaling`` (:attr:`SweepResult.scaling`): the scaling
    law its speedups support, with its parameters, peak and predicted speedups, and
    the recommended device count; or why no law was fitted, or fits."""
    lines = []
    for row in scaling.itertuples(index=False):
        if pd.isna(row.recommended_devices):
            lines.append(f"{row.strategy}: scaling law not fitted and no device count "
                         f"recommended: {row.unreliable_reason}")
            continue
        recommended = (f"recommended devices {row.recommended_devices} "
                       f"(efficiency >= {row.efficiency_threshold:.0%})")
        if pd.isna(row.law):
            lines.append(f"{row.strategy}: {row.unreliable_reason}; nothing predicted; "
                         f"{recommended}")
            continue
        predictions = ", ".join(
            f"{column.rsplit('_', 1)[1]} devices {getattr(row, column):.2f}×"
            for column in scaling.columns if column.startswith("predicted_speedup_")
        )
        lines.append(f"{row.strategy}: {_law_words(row)}; predicted speedup "
                     f"{predictions}; {recommended}")
    return lines


def _law_words(row: tuple) -> str:
    """A fitted law in words, e.g. ``"usl α 0.050, β 0.0200 (within 2.1% of every
    point), peaks at 7 devices (within the measured counts)"``."""
    if row.law == "usl":
        law = f"usl α {row.alpha:.3f}, β {row.beta:.4f}"
    else:
        law = f"{row.law} serial fraction {row.serial_fraction:.3f}"
    if math.isinf(row.peak_devices):
        peak = "rises without a peak"
    else:
        where = "within" if row.peak_within_measured else "beyond"
        count = int(row.peak_devices)
        peak = (f"peaks at {count} device{'' if count == 1 else 's'} "
                f"({where} the measured counts)")
    return f"{law} (within {row.fit_error:.1%} of every point), {peak}"


def _notes(summary: pd.DataFrame, scaling: pd.DataFrame, confidence: float,
           *extra: str) -> list[str]:
    """What the table's figures mean, then ``extra``, then the recommendations."""
    workers = (f"{MULTIWORKER}: devices are worker processes, {WORKERS_LABEL} (they "
               "share its cores)") if (summary["strategy"] == MULTIWORKER).any() else None
    notes = [interval_note(summary, confidence), missed_target_note(summary), workers]
    return [*(note for note in notes if note), *extra, *recommendations(scaling)]


def as_text(summary: pd.DataFrame, scaling: pd.DataFrame,
            confidence: float = defaults.CONFIDENCE) -> str:
    """The summary as a table that fits :data:`~nbreplica.bench.terminal.WIDTH`
    columns, then what its figures mean, why rows are unreliable, the columns left out
    and the recommendations, wrapped to the same width."""
    if summary.empty:
        return NO_POINTS
    columns, left_out = terminal.fitted(_terminal_columns(summary))
    extra = unreliable_notes(summary)
    if left_out:
        extra.append(f"Left out to fit {terminal.WIDTH} columns: "
                     f"{', '.join(column.heading for column in left_out)} (the HTML report, "
                     "summary.csv and SweepResult.frame have every column)")
    notes = _notes(summary, scaling, confidence, *extra)
    return "\n".join([*terminal.render(columns), *map(terminal.wrapped, notes)])


def _terminal_columns(summary: pd.DataFrame) -> list[terminal.Column]:
    """The cells of :func:`summary_cells` as terminal columns: the throughput without
    its interval (the reliability words say how well each row is known), unreliable
    rows' reasons left to the notes below, and neither the interval-width column (the
    missed-target note names the points that missed) nor columns where no device
    reported anything."""
    reliable = summary["reliable"].astype(bool)
    cells = summary_cells(summary).drop(columns=[INTERVAL_WIDTH], errors="ignore")
    cells["samples/s"] = [_figure(value, math.nan, math.nan, ok, "{:,.0f}")
                          for value, ok in zip(summary["samples_per_s"], reliable)]
    cells["reliability"] = cells["reliability"].where(reliable, UNRELIABLE)
    return [terminal.Column(name, list(cells[name]), left=name in _LEFT_ALIGNED,
                            rank=_TERMINAL_RANKS.get(name, 0))
            for name in cells.columns if not cells[name].eq(NOT_AVAILABLE).all()]


def as_html(summary: pd.DataFrame, scaling: pd.DataFrame,
            confidence: float = defaults.CONFIDENCE) -> str:
    """:func:`as_text` as HTML; escaped."""
    if summary.empty:
        return f"<p>{NO_POINTS}</p>"
    return html_table(summary_cells(summary)) + "".join(
        f"<p>{html.escape(line)}</p>" for line in _notes(summary, scaling, confidence)
    )


def html_table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table, every cell escaped (numbers to 4 significant
    digits, missing values as ``"n/a"``)."""
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}",
                         na_rep="n/a", border=0)


def _figure(value: float, low: float, high: float, reliable: bool, fmt: str) -> str:
    if not reliable:
        return f"{fmt.format(value)} (unreliable)"
    if pd.isna(low):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}–{fmt.format(high)}]"


def _optional(value: float | None, fmt: str) -> str:
    return NOT_AVAILABLE if value is None or pd.isna(value) else fmt.format(value)

"""A sweep's summary as a table: formatted cells and recommendations, rendered as
fixed-width text (terminals) or HTML (notebooks, the saved report page).

A figure the summary marks unreliable is printed without its interval, marked
``(unreliable)``, and its row says why and how many timed steps would do. In an
adaptive sweep's table, each speedup's interval width is shown against the target,
and a note names the points that did not reach it.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from nbreplica.bench import defaults
from nbreplica.bench.progress import describe_width
from nbreplica.bench.stats import repeats_for
from nbreplica.strategy.names import MULTIWORKER, WORKERS_LABEL

NO_POINTS = "No point was measured."
STABLE = "stable"
_GIB = 1024**3


def summary_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``summary`` (:attr:`SweepResult.frame`) a reader needs, as text:
    medians with their intervals in brackets (or marked unreliable), the speedup
    interval's width against an adaptive sweep's target, efficiency in percent, step
    times in ms, peak memory in GiB (``"n/a"`` where a device reported nothing), and
    each row's reliability."""
    reliable = summary["reliable"].astype(bool)
    cells = pd.DataFrame({
        "strategy": summary["strategy"],
        "devices": summary["devices"],
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
        "reliability": [STABLE if ok else f"unreliable: {reason}"
                        for ok, reason in zip(reliable, summary["unreliable_reason"])],
    })
    if has_target(summary):
        cells.insert(4, "interval width", [
            "" if pd.isna(met) else
            _width_against(width, target, met)
            for width, target, met in zip(summary["interval_width"], summary["target_ci"],
                                          summary["target_met"])
        ])
    return cells


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
    several_sweeps = summary["sweep_id"].nunique() > 1
    points = ", ".join(
        f"{f'{row.sweep_name} ' if several_sweeps else ''}{row.strategy}×{row.devices} "
        f"{describe_width(row.interval_width)} (target {row.target_ci:.0%})"
        for row in missed.itertuples(index=False)
    )
    return f"Speedup intervals wider than the target when the time budget ended: {points}"


def interval_note(summary: pd.DataFrame, confidence: float) -> str | None:
    """What the bracketed intervals of ``summary`` mean: the probability that each
    holds the true median, and how many repeats reach ``confidence`` when they fall
    short; ``None`` when no interval is shown."""
    shown = summary[summary["reliable"].astype(bool) & summary["interval_coverage"].notna()]
    if shown.empty:
        return None
    reached = dict.fromkeys(zip(shown["repeats"], shown["interval_coverage"]))
    levels = ", ".join(f"{level:.0%} ({repeats} repeats)" for repeats, level in reached)
    note = ("[low–high]: interval of the median across repeats; it holds the true "
            f"median with probability {levels}")
    if min(level for _, level in reached) < confidence:
        note += f"; {confidence:.0%} takes {repeats_for(confidence)} repeats"
    return note


def recommendations(scaling: pd.DataFrame) -> list[str]:
    """One line per strategy of ``scaling`` (:attr:`SweepResult.scaling`): its fitted
    law, predicted speedups and recommended device count, or why it was not fitted."""
    lines = []
    for row in scaling.itertuples(index=False):
        if not row.reliable:
            lines.append(f"{row.strategy}: {row.law} scaling law not fitted and no device "
                         f"count recommended: {row.unreliable_reason}")
            continue
        predictions = ", ".join(
            f"{column.rsplit('_', 1)[1]} devices {getattr(row, column):.2f}×"
            for column in scaling.columns if column.startswith("predicted_speedup_")
        )
        lines.append(
            f"{row.strategy}: {row.law} serial fraction {row.serial_fraction:.3f}; "
            f"predicted speedup {predictions}; recommended devices "
            f"{row.recommended_devices} (efficiency >= {row.efficiency_threshold:.0%})"
        )
    return lines


def _notes(summary: pd.DataFrame, scaling: pd.DataFrame, confidence: float) -> list[str]:
    workers = (f"{MULTIWORKER}: devices are worker processes, {WORKERS_LABEL} (they "
               "share its cores)") if (summary["strategy"] == MULTIWORKER).any() else None
    notes = [interval_note(summary, confidence), missed_target_note(summary), workers]
    return [*(note for note in notes if note), *recommendations(scaling)]


def as_text(summary: pd.DataFrame, scaling: pd.DataFrame,
            confidence: float = defaults.CONFIDENCE) -> str:
    """The summary cells as fixed-width text, then what the intervals mean and the
    recommendations."""
    if summary.empty:
        return NO_POINTS
    cells = summary_cells(summary)
    # The reasons read best left-aligned, under a left-aligned heading.
    width = max(len("reliability"), int(cells["reliability"].str.len().max()))
    table = cells.to_string(
        index=False, formatters={"reliability": lambda text: text.ljust(width)},
        header=[*cells.columns[:-1], "reliability".ljust(width)],
    )
    return "\n".join([*(line.rstrip() for line in table.splitlines()),
                      *_notes(summary, scaling, confidence)])


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
    return "n/a" if value is None or pd.isna(value) else fmt.format(value)

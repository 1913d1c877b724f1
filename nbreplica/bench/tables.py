"""A sweep's summary as a table: formatted cells and recommendations, rendered as
fixed-width text (terminals) or HTML (notebooks, the saved report page)."""

from __future__ import annotations

import html

import pandas as pd

NO_POINTS = "No point was measured."
_GIB = 1024**3


def summary_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``summary`` (:attr:`SweepResult.frame`) a reader needs, as text:
    medians with their intervals in brackets, efficiency in percent, step times in ms
    and peak memory in GiB; ``"n/a"`` where a device reported nothing."""
    return pd.DataFrame({
        "strategy": summary["strategy"],
        "devices": summary["devices"],
        "samples/s": [_with_interval(v, lo, hi, "{:,.0f}") for v, lo, hi in zip(
            summary["samples_per_s"], summary["samples_per_s_low"],
            summary["samples_per_s_high"])],
        "speedup": [_with_interval(v, lo, hi, "{:.2f}") for v, lo, hi in zip(
            summary["speedup"], summary["speedup_low"], summary["speedup_high"])],
        "efficiency": [f"{e:.0%}" for e in summary["efficiency"]],
        "step p50/p90 ms": [f"{p50 * 1e3:.1f}/{p90 * 1e3:.1f}" for p50, p90 in zip(
            summary["step_time_p50_s"], summary["step_time_p90_s"])],
        "first step s": [f"{t:.2f}" for t in summary["first_step_s"]],
        "peak mem GiB": [_optional(m / _GIB if pd.notna(m) else None, "{:.2f}")
                         for m in summary["peak_memory_bytes"]],
        "util %": [_optional(u, "{:.0f}") for u in summary["mean_utilization"]],
    })


def recommendations(scaling: pd.DataFrame) -> list[str]:
    """One line per strategy of ``scaling`` (:attr:`SweepResult.scaling`): its fitted
    law, predicted speedups and recommended device count."""
    lines = []
    for row in scaling.itertuples(index=False):
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


def as_text(summary: pd.DataFrame, scaling: pd.DataFrame) -> str:
    """The summary cells as fixed-width text, then the recommendations."""
    if summary.empty:
        return NO_POINTS
    return "\n".join([summary_cells(summary).to_string(index=False),
                      *recommendations(scaling)])


def as_html(summary: pd.DataFrame, scaling: pd.DataFrame) -> str:
    """The summary cells as an HTML table, then the recommendations; escaped."""
    if summary.empty:
        return f"<p>{NO_POINTS}</p>"
    return html_table(summary_cells(summary)) + "".join(
        f"<p>{html.escape(line)}</p>" for line in recommendations(scaling)
    )


def html_table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table, every cell escaped (numbers to 4 significant
    digits, missing values as ``"n/a"``)."""
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}",
                         na_rep="n/a", border=0)


def _with_interval(value: float, low: float, high: float, fmt: str) -> str:
    if pd.isna(low):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}–{fmt.format(high)}]"


def _optional(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or pd.isna(value) else fmt.format(value)

"""Figures of sweeps: scaling (speedup, efficiency, throughput) and device utilization.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot: no
GUI backend is touched (they render with Agg, headless or not) and no global figure
list grows in a long notebook session. :class:`ReportFigure` shows itself in a notebook
even where pyplot was never imported.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from nbreplica.bench import defaults
from nbreplica.bench.forecast_text import emulated_law_note
from nbreplica.bench.laws import USL
from nbreplica.bench.stats import scaling_curve, scaling_table, summarize
from nbreplica.strategy.names import BASELINE
from nbreplica.bench.tables import missed_target_note
from nbreplica.forecasting.report import Forecast, plot_forecast

EMULATED_NOTE = (
    "Emulated devices: TensorFlow logical devices sharing one CPU, not GPUs. "
    "These speedups show how the work is split, not what GPUs would gain."
)
UNRELIABLE_LABEL = "unreliable (no error bars)"
MISSED_TARGET_LABEL = "interval wider than the target"
_GIB = 1024**3
_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def figure_png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes, everything drawn outside the axes included."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


class ReportFigure(Figure):
    """A matplotlib ``Figure`` that a notebook displays as an image when it is a
    cell's value (a plain ``Figure`` needs pyplot's inline backend for that)."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def scaling_figure(
    summary: pd.DataFrame,
    *,
    threshold: float = defaults.EFFICIENCY_THRESHOLD,
    predict_at: tuple[int, ...] = (16, 32),
    forecast: Forecast | None = None,
) -> Figure:
    """Speedup, efficiency and throughput against the device count, one line per
    (sweep, strategy), with the summary's intervals as error bars.

    The speedup panel also shows the ideal linear speedup and the scaling law each
    strategy's points support (see :func:`nbreplica.bench.stats.scaling_table`),
    extended to the ``predict_at`` device counts (hollow markers); where no law fits,
    none is drawn and a note under the panels says how far each missed.
    Unreliable points (``summary["reliable"]`` false) are hollow grey markers without
    error bars, and a note under the panels says why and how many steps would do;
    a strategy with such points has no fitted law. Points of an adaptive sweep whose
    interval is wider than its target have red error bars, and a note under the
    panels gives the widths they reached.
    """
    if summary.empty:
        raise ValueError("There is nothing to plot: the sweep measured no point. "
                         "Received: an empty summary")
    figure = ReportFigure(figsize=(15, 5), layout="constrained")
    speedup_axes, efficiency_axes, throughput_axes = figure.subplots(1, 3)
    fits = scaling_table(summary, threshold, predict_at).set_index(
        ["sweep_id", "strategy"]
    )
    color_cycle = iter(f"C{i}" for i in range(10_000))
    largest = max([int(summary["devices"].max()), *predict_at])
    grid = np.geomspace(1, largest, 64)
    speedup_axes.plot(grid, grid, color="black", linestyle=":", label="ideal (linear)")
    misfits: list[str] = []
    for label, sweep_id, strategy, curve in _series(summary):
        color = next(color_cycle)
        _errorbars(speedup_axes, curve, "speedup", color, label)
        _errorbars(efficiency_axes, curve, "efficiency", color, label, scale=100)
        _errorbars(throughput_axes, curve, "samples_per_s", color, label)
        if (sweep_id, strategy) in fits.index:
            misfit = _fit_line(speedup_axes, fits.loc[(sweep_id, strategy)], label,
                               color, grid, predict_at)
            if misfit:
                misfits.append(misfit)
    if forecast is not None:
        plot_forecast(forecast, speedup_axes, color="dimgrey")
    efficiency_axes.axhline(threshold * 100, color="grey", linestyle=":",
                            label=f"threshold {threshold:.0%}")
    speedup_axes.set_yscale("log", base=2)
    _style(speedup_axes, "Speedup vs 1 device", "speedup (×)", [*_ticks(summary), *predict_at])
    _style(efficiency_axes, "Parallel efficiency", "efficiency (%)", _ticks(summary))
    _style(throughput_axes, "Throughput", "samples / s", _ticks(summary))
    speedup_axes.legend(fontsize="small")
    efficiency_axes.legend(fontsize="small")
    figure.suptitle(f"{_describe(summary)}\n({_error_bars(summary)})")
    notes = [*_unreliable_notes(summary), *misfits]
    missed = missed_target_note(summary)
    if missed:
        notes.append(missed)
    if summary["emulated"].astype(bool).any():
        notes.append(EMULATED_NOTE)
        if fits["law"].notna().any():
            notes.append(textwrap.fill(emulated_law_note(forecast), 160))
    for line, note in enumerate(notes):
        figure.text(0.5, -0.02 - 0.05 * line, note, ha="center", va="top",
                    color="firebrick")
    return figure


def _fit_line(axes: Axes, fit: pd.Series, label: str, color: str, grid: np.ndarray,
              predict_at: tuple[int, ...]) -> str | None:
    """Draw the scaling law chosen for one curve (a :func:`scaling_table` row),
    dashed, with its predictions as hollow markers; a law the points do not support
    is not drawn, and the note saying so is returned instead (``None`` otherwise,
    and for curves with unreliable points, which their own notes cover)."""
    if pd.isna(fit["law"]):
        if pd.isna(fit["recommended_devices"]):
            return None
        return f"No scaling law drawn for {label}: {fit['unreliable_reason']}"
    if fit["law"] == USL:
        peak = ("no peak" if np.isinf(fit["peak_devices"])
                else f"peak {int(fit['peak_devices'])} devices")
        words = f"α {fit['alpha']:.2f}, β {fit['beta']:.3f}, {peak}"
    else:
        words = f"serial fraction {fit['serial_fraction']:.2f}"
    axes.plot(grid, scaling_curve(fit, grid), color=color, linestyle="--", alpha=0.6,
              label=f"{label}: {fit['law']} fit, {words}")
    axes.plot(list(predict_at), [fit[f"predicted_speedup_{n}"] for n in predict_at],
              color=color, marker="o", markerfacecolor="none", linestyle="none")
    return None


def _error_bars(summary: pd.DataFrame) -> str:
    """What the error bars show, with the lowest coverage among them."""
    shown = summary.loc[summary["reliable"].astype(bool), "interval_coverage"].dropna()
    if shown.empty:
        return "no error bars: no point is reliable"
    return (f"error bars: intervals across repeats, holding the true figure with "
            f"probability ≥ {shown.min():.0%}")


def _unreliable_notes(summary: pd.DataFrame) -> list[str]:
    """One line per distinct reason: which points are unreliable, and why."""
    several_sweeps = summary["sweep_id"].nunique() > 1
    by_reason: dict[str, list[str]] = {}
    for row in summary[~summary["reliable"].astype(bool)].itertuples(index=False):
        name = f"{row.strategy}×{row.devices}"
        if several_sweeps:
            name = f"{row.sweep_name} {name}"
        by_reason.setdefault(row.unreliable_reason, []).append(name)
    return [f"Unreliable ({', '.join(points)}): {reason}"
            for reason, points in by_reason.items()]


def utilization_figure(samples: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Each device's utilization and memory over the sweep's time, with the span of
    every measured point shaded and labelled.

    Raises:
        ValueError: no device reported utilization or memory.
    """
    if not has_device_counters(samples):
        raise ValueError(
            "No device reported utilization or memory during this sweep (emulated "
            "devices have no such counters). Received: samples with metrics "
            f"{sorted(samples['metric'].unique())}"
        )
    utilization = samples[samples["metric"] == "utilization_gpu"]
    memory = samples[samples["metric"] == "memory_used"]
    figure = ReportFigure(figsize=(13, 6.5), layout="constrained")
    utilization_axes, memory_axes = figure.subplots(2, 1, sharex=True)
    for axes, frame, scale in ((utilization_axes, utilization, 1.0),
                               (memory_axes, memory, 1.0 / _GIB)):
        for device, rows in frame.groupby("device"):
            axes.plot(rows["time"], rows["value"] * scale, label=f"GPU {device}",
                      linewidth=1)
        _shade_points(axes, samples)
    utilization_axes.set_ylabel("utilization (%)")
    utilization_axes.set_ylim(0, 105)
    utilization_axes.set_title("Device utilization")
    memory_axes.set_ylabel("memory used (GiB)")
    memory_axes.set_xlabel("time since the sweep started (s)")
    memory_axes.set_title("Device memory")
    utilization_axes.legend(fontsize="small", loc="upper right", ncols=4)
    figure.suptitle(f"Devices during the sweep: {_describe(summary)}")
    if summary["emulated"].astype(bool).any():
        figure.text(0.5, -0.02, EMULATED_NOTE, ha="center", va="top", color="firebrick")
    return figure


def has_device_counters(samples: pd.DataFrame) -> bool:
    """Whether any device reported utilization or memory (real or simulated GPUs)."""
    return bool(samples["metric"].isin(["utilization_gpu", "memory_used"]).any())


def plot_comparison(
    frame_or_results: pd.DataFrame,
    *,
    confidence: float = defaults.CONFIDENCE,
    threshold: float = defaults.EFFICIENCY_THRESHOLD,
) -> Figure:
    """Several sweeps on one chart, e.g. two batch sizes, or split vs mirrored.

    Accepts stored runs (:func:`nbreplica.load_results`, one row per repeat) or
    summaries (``SweepResult.frame``, possibly several concatenated); one line per
    (sweep, strategy).
    """
    frame = frame_or_results
    if "repeat" in frame.columns:
        frame = summarize(frame, confidence)
    return scaling_figure(frame, threshold=threshold)


def _series(summary: pd.DataFrame) -> Iterator[tuple[str, str, str, pd.DataFrame]]:
    """(label, sweep id, strategy, rows) per line; every line starts at its sweep's
    single-device baseline."""
    names = summary.drop_duplicates("sweep_id").set_index("sweep_id")["sweep_name"]
    several_sweeps = len(names) > 1
    for sweep_id, group in summary.groupby("sweep_id", sort=False):
        baseline = group[group["strategy"] == BASELINE]
        strategies = [s for s in group["strategy"].unique() if s != BASELINE]
        for strategy in strategies or [BASELINE]:
            curve = pd.concat([baseline, group[group["strategy"] == strategy]])
            curve = curve.drop_duplicates("devices").sort_values("devices")
            name = names[sweep_id]
            if (names == name).sum() > 1:
                name = f"{name} ({sweep_id})"
            label = f"{name} · {strategy}" if several_sweeps else strategy
            yield label, sweep_id, strategy, curve


def _errorbars(axes: Axes, curve: pd.DataFrame, column: str, color: str, label: str,
               scale: float = 1.0) -> None:
    """The curve's line; its reliable points with error bars, its unreliable ones as
    hollow grey markers without (their intervals would claim a precision they lack)."""
    axes.plot(curve["devices"], curve[column] * scale, color=color, label=label)
    reliable = curve["reliable"].astype(bool)
    steady = curve[reliable]
    value = steady[column] * scale
    below = (value - steady[f"{column}_low"] * scale).fillna(0).clip(lower=0)
    above = (steady[f"{column}_high"] * scale - value).fillna(0).clip(lower=0)
    wide = steady["target_met"].eq(False).to_numpy()
    for points, error_color, label in ((~wide, color, "_nolegend_"),
                                       (wide, "firebrick", MISSED_TARGET_LABEL)):
        if points.any():
            first = label not in axes.get_legend_handles_labels()[1]
            axes.errorbar(steady["devices"][points], value[points],
                          yerr=[below[points], above[points]], color=color,
                          ecolor=error_color, marker="o", capsize=4, linestyle="none",
                          label=label if first else "_nolegend_")
    shaky = curve[~reliable]
    if not shaky.empty:
        first = UNRELIABLE_LABEL not in axes.get_legend_handles_labels()[1]
        axes.plot(shaky["devices"], shaky[column] * scale, linestyle="none", marker="o",
                  markerfacecolor="white", markeredgecolor="grey", color="grey",
                  label=UNRELIABLE_LABEL if first else "_nolegend_")


def _style(axes: Axes, title: str, ylabel: str, ticks: list[int]) -> None:
    axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(sorted(set(ticks))))
    axes.xaxis.set_major_formatter(_PLAIN)
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("devices")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if axes.get_yscale() == "log":
        axes.yaxis.set_major_formatter(_PLAIN)


def _ticks(summary: pd.DataFrame) -> list[int]:
    return [int(n) for n in summary["devices"].unique()]


def _describe(summary: pd.DataFrame) -> str:
    """e.g. ``"mlp · global batch 256 (strong scaling) · split vs mirrored"``."""
    models = " / ".join(dict.fromkeys(summary["model"].astype(str)))
    batches = []
    for scaling, group in summary.groupby("scaling", sort=False):
        if scaling == "strong":
            sizes = dict.fromkeys(str(b) for b in group["global_batch_size"])
            batches.append(f"global batch {' / '.join(sizes)} (strong scaling)")
        else:
            sizes = dict.fromkeys(f"{b:g}" for b in group["per_device_batch_size"])
            batches.append(f"per-device batch {' / '.join(sizes)} (weak scaling)")
    strategies = [s for s in dict.fromkeys(summary["strategy"]) if s != BASELINE]
    return " · ".join([models, *batches, " vs ".join(strategies) or BASELINE])


def _shade_points(axes: Axes, samples: pd.DataFrame) -> None:
    spans = samples.groupby(["strategy", "devices", "repeat"], sort=False)["time"].agg(
        ["min", "max"]
    ).sort_values("min")
    for shade, ((strategy, devices, _), span) in enumerate(spans.iterrows()):
        axes.axvspan(span["min"], span["max"], color="grey", alpha=0.08 + 0.08 * (shade % 2))
        axes.annotate(f"{strategy}×{devices}", (span["min"], 1.0),
                      xycoords=("data", "axes fraction"), fontsize="x-small",
                      rotation=90, va="top", color="dimgrey")

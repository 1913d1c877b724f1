"""Reports of a sweep: a text table for terminals, and files (PNG, CSV, HTML) on disk."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from nbreplica.bench import plots

if TYPE_CHECKING:
    from nbreplica.bench.result import SweepResult

_GIB = 1024**3


def text_table(summary: pd.DataFrame, scaling: pd.DataFrame) -> str:
    """The summary as fixed-width text, then one line per strategy on its fit."""
    if summary.empty:
        return "No point was measured."
    table = pd.DataFrame({
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
    lines = [table.to_string(index=False)]
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
    return "\n".join(lines)


def _with_interval(value: float, low: float, high: float, fmt: str) -> str:
    if pd.isna(low):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}–{fmt.format(high)}]"


def _optional(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or pd.isna(value) else fmt.format(value)


def save(result: SweepResult, directory: Path) -> dict[str, Path]:
    """Write CSVs, PNGs and the HTML report of ``result`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"summary": directory / "summary.csv", "runs": directory / "runs.csv"}
    result.frame.to_csv(paths["summary"], index=False)
    result.runs.to_csv(paths["runs"], index=False)
    images = {"scaling": plots.figure_png(result.plot())}
    if plots.has_device_counters(result.samples):
        images["utilization"] = plots.figure_png(result.plot_utilization())
    for key, data in images.items():
        paths[key] = directory / f"{key}.png"
        paths[key].write_bytes(data)
    paths["report"] = directory / "report.html"
    paths["report"].write_text(render_html(result, images), encoding="utf-8")
    return paths


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.note { color: #a02020; }
.banner { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }
"""


def render_html(result: SweepResult, images: dict[str, bytes]) -> str:
    """A self-contained HTML page (figures embedded as base64 PNG). Every string
    from the user or the environment is escaped."""
    esc = html.escape
    runs = result.runs
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(result.name)} · nbreplica sweep</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Scaling sweep: {esc(result.name)}</h1>",
    ]
    if result.interrupted:
        parts.append(
            f'<p class="banner">Interrupted: {len(runs)} of {result.planned_points} '
            "points were measured; the figures and tables show those.</p>"
        )
    if runs["emulated"].astype(bool).any():
        parts.append(f'<p class="note">{esc(plots.EMULATED_NOTE)}</p>')
    parts += ["<h2>Environment</h2>", _definition_table(_environment(result))]
    if "scaling" in images:
        parts += ["<h2>Scaling</h2>", _image(images["scaling"], "Scaling figure")]
    parts += [
        "<h2>Summary</h2>",
        f"<p>Medians across repeats; intervals at {result.confidence:.0%} confidence "
        "(Student-t on the log scale). Strategy <code>single</code> is the plain model "
        "on one device, the baseline of every speedup.</p>",
        _frame_html(result.frame),
        "<h2>Fitted scaling law</h2>",
        _frame_html(result.scaling),
    ]
    if "utilization" in images:
        parts += ["<h2>Devices</h2>", _image(images["utilization"], "Device utilization")]
    parts += ["<h2>Every run</h2>", _frame_html(runs), "</body></html>"]
    return "\n".join(parts)


def _environment(result: SweepResult) -> dict[str, str]:
    runs = result.runs
    first = runs.iloc[0] if len(runs) else None
    environment = {
        "sweep id": result.sweep_id,
        "results file": str(result.results_path),
        "points measured": f"{len(runs)} of {result.planned_points}",
    }
    if first is not None:
        environment.update({
            "model": f"{first['model']} ({first['params']:,} parameters)",
            "scaling": str(first["scaling"]),
            "global batch sizes": ", ".join(map(str, runs["global_batch_size"].unique())),
            "strategies": ", ".join(runs["strategy"].unique()),
            "devices (largest point)": str(
                runs.loc[runs["devices"].idxmax(), "device_names"]
            ),
            "emulated devices": "yes" if bool(first["emulated"]) else "no",
            "host": str(first["host"]),
            "TensorFlow": str(first["tensorflow_version"]),
            "Keras": str(first["keras_version"]),
            "first point finished": str(runs["timestamp"].min()),
            "last point finished": str(runs["timestamp"].max()),
        })
    return environment


def _definition_table(items: dict[str, str]) -> str:
    rows = "".join(
        f'<tr><th style="text-align:left">{html.escape(key)}</th>'
        f'<td style="text-align:left">{html.escape(value)}</td></tr>'
        for key, value in items.items()
    )
    return f"<table>{rows}</table>"


def _frame_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}",
                         na_rep="n/a", border=0)


def _image(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'

"""Reports of a sweep: its summary shown in place (terminal text, notebook HTML), and
files on disk (PNG, CSV, a self-contained HTML page)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd
from matplotlib.figure import Figure

from nbreplica.bench.forecast_text import forecast_title, sweep_forecast_lines
from nbreplica.bench.plots import EMULATED_NOTE, figure_png, has_device_counters
from nbreplica.bench.tables import as_html, as_text, html_table
from nbreplica.bench.terminal import wrapped

if TYPE_CHECKING:
    from nbreplica.forecasting.report import Forecast

_NOTE_STYLE = "color: #a02020"
SIMULATED_NOTE = ("Simulated GPUs: memory and utilization come from the simulated NVML "
                  "driver of nbreplica.testing (NBREPLICA_FAKE_NVML), not from hardware.")


class ReportedSweep(Protocol):
    """What a report reads of a sweep (:class:`nbreplica.SweepResult` has it all);
    defined here so that reports need not import the result they describe."""

    name: str
    sweep_id: str
    results_path: Path
    planned_points: int
    interrupted: bool
    confidence: float
    runs: pd.DataFrame
    samples: pd.DataFrame
    frame: pd.DataFrame
    scaling: pd.DataFrame
    forecast: Forecast | None

    def plot(self) -> Figure: ...

    def plot_utilization(self) -> Figure: ...


def heading(result: ReportedSweep) -> str:
    """e.g. ``"Sweep 'mlp-strong-b256', stored in ~/.nbreplica/results.sqlite"``,
    saying how many points were measured if the sweep was stopped early."""
    stopped = (f" (stopped after {len(result.runs)} of {result.planned_points} points)"
               if result.interrupted else "")
    return f"Sweep {result.name!r}{stopped}, stored in {shown_path(result.results_path)}"


def shown_path(path: Path) -> str:
    """``path`` as a report shows it: under the home folder as ``~/...``, so that a
    saved notebook or a shared report does not spell out whose home it was."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:  # not under the home folder
        return str(path)


def summary_text(result: ReportedSweep) -> str:
    """The heading, the note on emulated devices (if so), the summary table and the
    recommendations, as plain text that fits a terminal (a terminal's display of a
    sweep)."""
    return "\n".join([heading(result), *device_notes(result),
                      as_text(result.frame, result.scaling, result.confidence),
                      *forecast_notes(result)])


def split_notes(result: ReportedSweep) -> list[str]:
    """How the split points split each batch, when not evenly: one line per device
    count, from its first run (``"auto"`` calibrates every run: the others are in
    the runs' ``shares`` column)."""
    runs = result.runs
    if "shares" not in runs or not runs["shares"].dropna().map(
            lambda split: not str(split).startswith("even ")).any():
        return []
    first = runs.dropna(subset=["shares"]).drop_duplicates(["strategy", "devices"])
    return ["Each batch split by shares: " + "; ".join(
        f"{row.strategy} on {row.devices} devices {row.shares}"
        for row in first.itertuples())]


def forecast_notes(result: ReportedSweep) -> list[str]:
    """Under the table: the sweep's forecast, and what a law fitted to emulated points
    cannot say (see :func:`~nbreplica.bench.forecast_text.sweep_forecast_lines`)."""
    fitted = bool(result.scaling["law"].notna().any())
    lines = sweep_forecast_lines(result.forecast, fitted and _emulated(result))
    return ["", *lines] if lines else []


def device_notes(result: ReportedSweep, simulated: bool = False) -> list[str]:
    """What the figures of ``result`` came from, wrapped for a terminal: emulated
    devices, (``simulated``) memory and utilization read from the simulated NVML
    driver, and batches split by shares (:func:`split_notes`)."""
    notes = [EMULATED_NOTE] if _emulated(result) else []
    if simulated and has_device_counters(result.samples):
        notes.append(SIMULATED_NOTE)
    notes += split_notes(result)
    return [wrapped(note) for note in notes]


def summary_html(result: ReportedSweep) -> str:
    """:func:`summary_text` as HTML (a notebook's display of a sweep); escaped."""
    return "".join([
        f"<div class='nbreplica-sweep'><p><b>{html.escape(heading(result))}</b></p>",
        *_emulated_note(result),
        *_split_html(result),
        as_html(result.frame, result.scaling, result.confidence),
        *_forecast_html(result),
        "</div>",
    ])


def _forecast_html(result: ReportedSweep) -> list[str]:
    """:func:`forecast_notes` as preformatted HTML (nothing when there are none)."""
    notes = forecast_notes(result)[1:]
    text = "\n".join(notes)
    return [f"<pre>{html.escape(text)}</pre>"] if notes else []


def _split_html(result: ReportedSweep) -> list[str]:
    return [f"<p>{html.escape(line)}</p>" for line in split_notes(result)]


def _emulated(result: ReportedSweep) -> bool:
    return bool(result.runs["emulated"].astype(bool).any())


def _emulated_note(result: ReportedSweep) -> list[str]:
    if not _emulated(result):
        return []
    return [f'<p style="{_NOTE_STYLE}">{html.escape(EMULATED_NOTE)}</p>']


def save(result: ReportedSweep, directory: Path) -> dict[str, Path]:
    """Write CSVs, PNGs and the HTML report of ``result`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"summary": directory / "summary.csv", "runs": directory / "runs.csv"}
    result.frame.to_csv(paths["summary"], index=False)
    result.runs.to_csv(paths["runs"], index=False)
    if result.forecast is not None:
        paths["forecast"] = directory / "forecast.csv"
        result.forecast.frame.to_csv(paths["forecast"], index=False)
    images = {"scaling": figure_png(result.plot())}
    if has_device_counters(result.samples):
        images["utilization"] = figure_png(result.plot_utilization())
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
.banner { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }
"""


def render_html(result: ReportedSweep, images: dict[str, bytes]) -> str:
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
    parts += [*_emulated_note(result),
              *_split_html(result),
              "<h2>Environment</h2>", _definition_table(_environment(result))]
    if "scaling" in images:
        parts += ["<h2>Scaling</h2>", _image(images["scaling"], "Scaling figure")]
    parts += [
        "<h2>Summary</h2>",
        "<p>Geometric means across repeats with their Student-t intervals (of the "
        "mean log; each speedup is paired with its round's baseline). Strategy "
        "<code>single</code> is the plain model on one device, the baseline of every "
        "speedup. A figure marked unreliable is shown without an interval; its row says "
        "why and how many timed steps per repeat would do. An adaptive sweep shows each "
        "speedup interval's width against its target, and names the points left wider "
        "when its time budget ended. Every column is in "
        "<code>summary.csv</code>.</p>",
        as_html(result.frame, result.scaling, result.confidence),
        "<h2>Fitted scaling law</h2>",
        html_table(result.scaling),
        *_forecast_section(result),
    ]
    if "utilization" in images:
        parts += ["<h2>Devices</h2>", _image(images["utilization"], "Device utilization")]
    parts += ["<h2>Every run</h2>", html_table(runs), "</body></html>"]
    return "\n".join(parts)


def _forecast_section(result: ReportedSweep) -> list[str]:
    """The forecast beside the measurements (its explanation in full), and what a law
    fitted to emulated points cannot say."""
    parts = _forecast_html(result)
    if result.forecast is not None:
        parts = [f"<h2>{html.escape(forecast_title(result.forecast))}</h2>", *parts,
                 f"<pre>{html.escape(result.forecast.explain())}</pre>"]
    return parts


def _environment(result: ReportedSweep) -> dict[str, str]:
    runs = result.runs
    first = runs.iloc[0] if len(runs) else None
    environment = {
        "sweep id": result.sweep_id,
        "results file": shown_path(result.results_path),
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


def _image(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'

"""A forecast (:class:`nbreplica.forecasting.report.Forecast`) as terminal text: its
explanation wrapped to :data:`~nbreplica.bench.terminal.WIDTH` columns, then the parts
of its step per device count as a table that fits them (parts that do not fit are left
out, by name, as the sweep table does)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from nbreplica.bench import terminal
from nbreplica.forecasting.step_model import PARTS

if TYPE_CHECKING:
    import pandas as pd

    from nbreplica.forecasting.report import Forecast


def forecast_lines(forecast: Forecast, width: int = terminal.WIDTH) -> list[str]:
    """The explanation of ``forecast``, then its table of step parts, each line at
    most ``width`` characters (a word longer than that stays whole)."""
    lines = [wrapped_line(line, width) for line in forecast.explain().splitlines()]
    return [*lines, "", *parts_table(forecast, width)]


def wrapped_line(line: str, width: int = terminal.WIDTH) -> str:
    """``line`` wrapped to ``width``; its continuation lines indented two more than
    its first (under a bullet's text, after its ``- ``)."""
    text = line.lstrip()
    indent = len(line) - len(text) + 2
    return textwrap.fill(line, width, subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False) or line


def parts_table(forecast: Forecast, width: int = terminal.WIDTH) -> list[str]:
    """Per device count, the forecast milliseconds of each part of the step that any
    count spends time on, and what bounds the step. When they do not fit, the parts
    with the least time are left out first."""
    frame = forecast.frame
    longest = {part: frame[f"{part}_s"].max() for part in PARTS if frame[f"{part}_s"].max() > 0}
    least_first = sorted(longest, key=longest.get)
    columns = [terminal.Column("devices", [str(n) for n in frame["devices"]]),
               terminal.Column("batch/GPU", [str(n) for n in frame["per_device_batch"]])]
    columns += [terminal.Column(f"{part.replace('_', ' ')} ms",
                                [f"{value * 1e3:.2f}" for value in frame[f"{part}_s"]],
                                rank=len(least_first) - least_first.index(part))
                for part in longest]
    columns.append(terminal.Column("bound by (forecast)", list(frame["bottleneck"]), left=True))
    kept, left_out = terminal.fitted(columns, width)
    heading = (f"Forecast step parts on {forecast.hardware.name} (ms per step, before "
               "overlap):")
    note = ([terminal.wrapped(f"(left out to fit {width} columns: "
                              f"{', '.join(c.heading for c in left_out)})", width)]
            if left_out else [])
    return [heading, *terminal.render(kept), *note]


def catalogue_lines(catalogue: pd.DataFrame) -> list[str]:
    """The machines of :func:`nbreplica.hardware_catalogue` as a table."""
    return ["Machines a forecast knows (--hardware NAME):", *terminal.render(
        [terminal.Column(name, list(catalogue[name]), left=True) for name in catalogue])]


def sweep_forecast_lines(forecast: Forecast | None, emulated_law: bool,
                         width: int = terminal.WIDTH) -> list[str]:
    """Under a sweep's table: its forecast's speedup per device count beside what the
    sweep measured, and, where a law was fitted to emulated points
    (``emulated_law``), what it can and cannot say about GPUs."""
    lines = []
    if forecast is not None:
        frame = forecast.frame
        lines += [f"{forecast_title(forecast)} ({forecast.strategy}, {forecast.scaling} "
                  "scaling; a forecast for real GPUs, not a measurement):", *terminal.render([
                      terminal.Column("devices", [str(n) for n in frame["devices"]]),
                      terminal.Column("speedup (forecast)", [f"{s:.2f}" for s in frame["speedup"]]),
                      terminal.Column("efficiency (forecast)",
                                      [f"{e:.0%}" for e in frame["efficiency"]]),
                      terminal.Column("bound by (forecast)", list(frame["bottleneck"]),
                                      left=True)])]
    if emulated_law:
        lines.append(terminal.wrapped(emulated_law_note(forecast), width))
    return lines


def emulated_law_note(forecast: Forecast | None) -> str:
    """What a law fitted to emulated points says: how the step splits over one CPU's
    cores, extrapolated; GPUs are the forecast's to speak for."""
    where = (f"the {forecast.label} speaks for them" if forecast is not None else
             "nbreplica.forecast (sweep(..., forecast=HARDWARE), nbreplica sweep --forecast "
             "HARDWARE) speaks for them")
    return ("The points were measured on emulated devices sharing one CPU: the fitted law "
            "and its predicted speedups at more devices extrapolate that sharing, not what "
            f"GPUs would gain; {where}.")


def forecast_title(forecast: Forecast) -> str:
    """Its curve's label as a heading: ``"Forecast on dgx-a100"``."""
    return forecast.label[:1].upper() + forecast.label[1:]

"""A forecast as the user sees it: its frame, its plot and its explanation.

``Forecast.frame`` has one row per device count, with columns:

- ``devices``, ``per_device_batch``, ``global_batch``;
- ``step_s`` (forecast seconds per step), ``samples_per_s``, ``speedup`` (throughput
  over one device's), ``efficiency`` (speedup over devices);
- the step's parts in seconds: ``input_s`` (the host's input pipeline preparing one
  GPU's rows, overlapping the rest; 0 without ``input_cpu_seconds``), ``batch_s`` (the
  batch's copy to the GPUs),
  ``compute_s`` (one replica's forward and backward pass), ``weights_s``,
  ``activations_s``, ``gradients_s`` (copies of the weights to the replicas, of the
  outputs and their gradients, of the weight gradients back), ``merge_s`` (the loss on
  the merge device), ``gradient_sum_s``, ``allreduce_s``, ``update_s`` (the optimizer);
- ``bottleneck``: what contributes most to the step, with its link or device.

``Forecast.links`` lists, per device count, every link the step's copies use (a GPU's
PCIe link, a PCIe switch's uplink, host memory, NVLink) and the seconds they keep it
busy per step.

:func:`plot_forecast` draws a forecast's speedup onto any matplotlib ``Axes`` as a
dashed line labelled "forecast on <hardware>", for reports that show measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.step_model import PARTS, StepForecast

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def links_frame(steps: Sequence[StepForecast]) -> "pd.DataFrame":
    """Per device count and link (named with its direction), the seconds the step's
    copies keep it busy: columns ``devices``, ``link``, ``busy_s``."""
    import pandas as pd

    return pd.DataFrame([(step.devices, link, seconds) for step in steps
                         for link, seconds in sorted(step.busy.items(), key=lambda i: -i[1])],
                        columns=["devices", "link", "busy_s"])


def forecast_frame(steps: Sequence[StepForecast]) -> "pd.DataFrame":
    """The frame of ``steps`` (the first being the one-device step)."""
    import pandas as pd

    rows = []
    for step in steps:
        global_batch = step.per_replica_batch * step.devices
        rows.append({"devices": step.devices, "per_device_batch": step.per_replica_batch,
                     "global_batch": global_batch, "step_s": step.seconds,
                     "samples_per_s": global_batch / step.seconds,
                     **{f"{part}_s": step.parts[part] for part in PARTS},
                     "bottleneck": step.bottleneck})
    frame = pd.DataFrame(rows)
    base = frame["samples_per_s"].iloc[0] / frame["devices"].iloc[0]
    frame.insert(5, "speedup", frame["samples_per_s"] / base)
    frame.insert(6, "efficiency", frame["speedup"] / frame["devices"])
    return frame


@dataclass
class Forecast:
    """How a model's training step is forecast to scale on a machine's GPUs, made by
    :func:`nbreplica.forecast`: ``frame`` (see :mod:`nbreplica.forecasting.report` for
    its columns), ``links`` (per device count, each link's busy seconds), :meth:`plot`,
    and :meth:`explain` (also ``str(forecast)``)."""

    model_name: str
    hardware: Hardware
    strategy: str
    scaling: str
    settings: dict[str, Any]
    frame: "pd.DataFrame"
    links: "pd.DataFrame"
    compute_source: str
    recommendations: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The legend label of this forecast's curve."""
        return f"forecast on {self.hardware.name}"

    def explain(self) -> str:
        """Where the time goes at each device count, what bounds it, what to change,
        and what the forecast assumes."""
        lines = [self._title(), f"  machine: {self.hardware.description}; {self.hardware.summary()}",
                 f"  compute: {self.compute_source}", "",
                 "  devices  step (ms)  samples/s  speedup  efficiency  bound by (forecast)"]
        for row in self.frame.itertuples():
            lines.append(f"  {row.devices:>7}  {row.step_s * 1e3:>9.1f}  {row.samples_per_s:>9.0f}"
                         f"  {row.speedup:>6.2f}x  {row.efficiency:>9.0%}  {row.bottleneck}")
        lines += ["", f"  Where the time goes at {int(self.frame['devices'].iloc[-1])} GPUs "
                  f"(forecast): {self._parts_of(self.frame.iloc[-1])}"]
        lines += self._busiest_links()
        if self.recommendations:
            lines += ["", "  Recommendations (forecast):"]
            lines += [f"  - {text}" for text in self.recommendations]
        lines += ["", "  Forecast assumptions:"] + [f"  - {text}" for text in self.assumptions]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def plot(self, ax: "Axes | None" = None) -> "Figure":
        """The forecast speedup against devices (with the ideal line) and the step's
        parts per device count; or, given ``ax``, only the speedup drawn onto it."""
        import matplotlib.pyplot as plt

        if ax is not None:
            plot_forecast(self, ax)
            return ax.figure
        figure, (speed, parts) = plt.subplots(1, 2, figsize=(11, 4))
        devices = self.frame["devices"]
        speed.plot(devices, devices, color="grey", linewidth=1, label="ideal (linear)")
        plot_forecast(self, speed)
        speed.set(xlabel="GPUs", ylabel="speedup (forecast)", title="Forecast speedup")
        speed.legend()
        bottom = None
        for part in PARTS:
            values = self.frame[f"{part}_s"] * 1e3
            if values.max() > 0:
                parts.bar(devices.astype(str), values, bottom=bottom, label=part)
                bottom = values if bottom is None else bottom + values
        parts.set(xlabel="GPUs", ylabel="ms per step (forecast, parts before overlap)",
                  title="Forecast step parts")
        parts.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figure.suptitle(self._title())
        figure.tight_layout()
        return figure

    def _title(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return (f"Forecast: {self.model_name} on {self.hardware.name}, "
                f"strategy={self.strategy!r}{f' ({options})' if options else ''}, "
                f"{self.scaling} scaling")

    def _busiest_links(self) -> list[str]:
        last = self.links[self.links["devices"] == self.frame["devices"].iloc[-1]].head(3)
        if last.empty:
            return []
        return ["  Busiest links there (forecast): " + ", ".join(
            f"{row.link} {row.busy_s * 1e3:.1f} ms" for row in last.itertuples())]

    @staticmethod
    def _parts_of(row: Any) -> str:
        parts = [(part, row[f"{part}_s"]) for part in PARTS if row[f"{part}_s"] > 0]
        total = sum(value for _, value in parts) or 1.0
        return ", ".join(f"{part} {value * 1e3:.1f} ms ({value / total:.0%})"
                         for part, value in sorted(parts, key=lambda p: -p[1]))


def plot_forecast(forecast: Forecast, ax: "Axes", label: str | None = None,
                  **style: Any) -> Any:
    """Draw ``forecast``'s speedup onto ``ax`` as a dashed line (labelled
    "forecast on <hardware>" unless ``label`` is given); returns the line."""
    style = {"linestyle": "--", "marker": "o", "markerfacecolor": "none", **style}
    (line,) = ax.plot(forecast.frame["devices"], forecast.frame["speedup"],
                      label=label or forecast.label, **style)
    return line

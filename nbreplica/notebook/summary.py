"""The compact summary shown after a ``%%replicate`` cell (HTML in a notebook, text
elsewhere)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from nbreplica.gpus.available import Accelerator
from nbreplica.notebook.cell_parallel import CellRun
from nbreplica.notebook.training import TrainingStats
from nbreplica.notebook.worker_cell import WorkersRun
from nbreplica.strategy.workers import WorkerProcess

_GIB = 1024**3
_NOT_AVAILABLE = "n/a"


class _Summary:
    """A run's summary as text lines and a per-device table, shown as plain text or
    HTML."""

    def lines(self) -> list[str]:
        """The summary's text lines, without the per-device table."""
        raise NotImplementedError

    def device_rows(self) -> list[tuple[str, str, str]]:
        """(GPU, peak memory, mean utilization) per device."""
        raise NotImplementedError

    def __repr__(self) -> str:
        lines = self.lines()
        rows = self.device_rows()
        if rows:
            table = [("GPU", "peak memory", "mean utilization"), *rows]
            widths = [max(len(row[i]) for row in table) for i in range(3)]
            lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                      for row in table]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head, *rest = (html.escape(line) for line in self.lines())
        parts = [f"<div class='nbreplica-summary'><b>{head}</b>"]
        parts += [f"<br>{line}" for line in rest]
        rows = self.device_rows()
        if rows:
            cells = "".join(
                f"<tr><td>{gpu}</td><td>{memory}</td><td>{utilization}</td></tr>"
                for gpu, memory, utilization in rows
            )
            parts.append(
                "<table><thead><tr><th>GPU</th><th>peak memory</th>"
                f"<th>mean utilization</th></tr></thead><tbody>{cells}</tbody></table>"
            )
        parts.append("</div>")
        return "".join(parts)


class CellSummary(_Summary):
    """What a ``%%replicate`` run used and measured: devices, strategy, wall time,
    training throughput (when the cell trained) and, when monitored, each device's
    peak memory and mean utilization."""

    def __init__(self, run: CellRun) -> None:
        self.run = run

    def lines(self) -> list[str]:
        """The summary's text lines, without the per-device table."""
        run = self.run
        how = {"split": "split over", "mirrored": "mirrored over",
               "single": "on"}[run.strategy]
        lines = [f"%%replicate: {how} {describe_devices(run.devices)} · "
                 f"wall time {run.wall_s:.2f} s"]
        if run.training is not None:
            lines.append(training_line(run.training))
        lines += sorted({f"each batch split by shares: {fit.split}" for fit in run.fits
                         if fit.split is not None and not fit.split.startswith("even ")})
        return lines

    def device_rows(self) -> list[tuple[str, str, str]]:
        """(GPU, peak memory, mean utilization) per device; empty unless monitored."""
        return [
            (str(usage.device.index),
             _NOT_AVAILABLE if usage.peak_memory_bytes is None
             else f"{usage.peak_memory_bytes / _GIB:.2f} GiB",
             _NOT_AVAILABLE if usage.mean_utilization is None
             else f"{usage.mean_utilization:.0f} %")
            for usage in self.run.usage or ()
        ]

class WorkersSummary(_Summary):
    """What a ``%%replicate --workers`` run used and measured: the workers, wall time,
    the chief's training throughput, and which values came back to the notebook."""

    def __init__(self, run: WorkersRun) -> None:
        self.run = run

    def lines(self) -> list[str]:
        run = self.run
        where = "workers on one machine" if run.backend == "local" else "workers"
        lines = [f"%%replicate: {run.workers} {where} ({run.backend} backend) · "
                 f"wall time {run.wall_s:.2f} s"]
        if run.training is not None:
            lines.append(training_line(run.training) + " on the chief")
        if run.brought_back:
            lines.append(f"from the chief: {', '.join(run.brought_back)}")
        lines += [f"not brought back: {name}: {why}" for name, why in run.left_out.items()]
        return lines

    def device_rows(self) -> list[tuple[str, str, str]]:
        return []


def training_line(stats: TrainingStats) -> str:
    """One line on a cell's training: throughput, steps, batch, step times."""
    rate = (f"{stats.samples_per_s:,.0f} samples/s" if stats.samples_per_s
            else f"{stats.steps_per_s:,.1f} steps/s (batch size unknown)")
    batch = f", batch {stats.batch_size}" if stats.batch_size else ""
    fits = f" in {stats.fits} fit calls" if stats.fits > 1 else ""
    return (f"training {stats.model!r}: {rate} after the first step "
            f"({stats.steps} steps{batch}{fits}; first step {stats.first_step_s:.2f} s, "
            f"then {stats.step_time_p50_s * 1e3:.1f} ms median)")


def describe_devices(devices: Sequence[Accelerator] | Sequence[WorkerProcess]) -> str:
    """e.g. ``"4 emulated GPUs (0, 1, 2, 3)"`` or ``"1 GPU (2: NVIDIA A100)"``."""
    indices = ", ".join(str(device.index) for device in devices)
    noun = "GPU" if len(devices) == 1 else "GPUs"
    if all(device.emulated for device in devices):
        return f"{len(devices)} emulated {noun} ({indices})"
    names = sorted({device.name for device in devices})
    return f"{len(devices)} {noun} ({indices}: {', '.join(names)})"

"""What a sweep returns: measurements, their summary, plots and a saved report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd
from matplotlib.figure import Figure

from nbreplica.bench import defaults
from nbreplica.bench.plots import scaling_figure, utilization_figure
from nbreplica.bench.report import save as save_report
from nbreplica.bench.report import forecast_notes, summary_html, summary_text
from nbreplica.bench.stats import scaling_table, summarize
from nbreplica.bench.store import existing_store, stored_runs
from nbreplica.bench.tables import as_text
from nbreplica.forecasting.saved import forecast_from_json

if TYPE_CHECKING:
    from nbreplica.forecasting.report import Forecast


class PrettyPrinter(Protocol):
    """The part of IPython's ``PrettyPrinter`` that :meth:`SweepResult._repr_pretty_`
    uses (bench does not import IPython)."""

    def text(self, obj: str) -> None: ...


class SweepResult:
    """The outcome of :func:`nbreplica.sweep`.

    Attributes:
        runs: one row per measured point (strategy, device count, repeat), exactly
            as stored in the results file.
        frame: one row per (strategy, device count): geometric means across
            repeats with their intervals and coverage (see
            :func:`nbreplica.bench.stats.geometric_interval`), speedup, efficiency,
            whether the figures are reliable (``reliable``, ``unreliable_reason``,
            ``steps_needed``: see :mod:`nbreplica.bench.reliability`) and the
            environment. Strategy ``"single"`` is the plain model on one device, the
            baseline of every speedup.
        scaling: per strategy, the scaling law its speedups support (Amdahl for
            strong scaling, Gustafson for weak, or the Universal Scalability Law for
            speedups that bend or fall), its parameters, fit error and peak, the
            speedups it predicts, and the recommended device count (see
            :func:`nbreplica.bench.stats.scaling_table`); no law (NaN, and the reason
            said) when none fits or a point behind it is unreliable.
        samples: device samples taken during the sweep (time in seconds since it
            started, device, metric, value); empty for devices without counters.
        name, sweep_id: how the sweep is found again with :meth:`load` or
            :func:`nbreplica.load_results`.
        results_path: the results file every point was appended to.
        interrupted: the sweep was stopped before measuring every planned point.
        forecast: with ``sweep(..., forecast=HARDWARE)``, the forecast
            (:func:`nbreplica.forecast`) of the sweep's model on that machine, shown
            beside the measurements in the table, the plot and the report, and kept
            in the results file with the sweep (a loaded sweep has it again);
            ``None`` otherwise, and for sweeps stored before forecasts were kept.

    In a notebook a result shows as its summary table (figures with intervals,
    efficiency, step times, unreliable figures marked with the reason) and each
    strategy's recommended device count; its figures show with :meth:`plot` and
    :meth:`plot_utilization`.
    """

    def __init__(
        self,
        runs: pd.DataFrame,
        samples: pd.DataFrame,
        *,
        name: str,
        sweep_id: str,
        results_path: Path,
        planned_points: int,
        interrupted: bool = False,
        efficiency_threshold: float = defaults.EFFICIENCY_THRESHOLD,
        confidence: float = defaults.CONFIDENCE,
    ) -> None:
        self.runs = runs
        self.samples = samples
        self.name = name
        self.sweep_id = sweep_id
        self.results_path = results_path
        self.planned_points = planned_points
        self.interrupted = interrupted
        self.confidence = confidence
        self.efficiency_threshold = efficiency_threshold
        self.frame = summarize(runs, confidence)
        self.scaling = scaling_table(self.frame, efficiency_threshold)
        self.forecast: Forecast | None = None

    @classmethod
    def load(
        cls, name: str | None = None, *, results_path: str | os.PathLike[str] | None = None
    ) -> SweepResult:
        """The latest stored sweep called ``name`` (a sweep name or id), or the latest
        stored sweep of all, rebuilt from the results file.

        The file does not say how many points were planned: :attr:`planned_points`
        is the number stored and :attr:`interrupted` is ``False``. Intervals and the
        recommendation use the defaults of :func:`nbreplica.sweep`.

        Args:
            name: the sweep's name or id; ``None`` for the latest sweep stored.
            results_path: the results file; defaults to ``$NBREPLICA_RESULTS`` or
                ``~/.nbreplica/results.sqlite``.

        Raises:
            FileNotFoundError: there is no results file.
            LookupError: the file holds no sweep called ``name`` (or none at all).
            ResultsStoreError: the file cannot be read (a directory, a damaged file).
        """
        store = existing_store(results_path)
        runs = stored_runs(store, name, argument="name")
        if runs.empty:
            raise LookupError(f"No sweep is stored in {store.path} yet. Received: name=None")
        sweep_id = str(runs["sweep_id"].iloc[-1])
        runs = runs[runs["sweep_id"] == sweep_id].reset_index(drop=True)
        result = cls(
            runs, store.samples(sweep_id), name=str(runs["sweep_name"].iloc[0]),
            sweep_id=sweep_id, results_path=store.path, planned_points=len(runs),
        )
        stored = store.forecast(sweep_id)
        if stored is not None:
            result.forecast = forecast_from_json(stored)
        return result

    @property
    def recommended_devices(self) -> dict[str, int | None]:
        """Per strategy, the largest device count whose efficiency meets the threshold;
        ``None`` where the strategy's points are unreliable (see :attr:`scaling`)."""
        return {strategy: None if pd.isna(count) else int(count)
                for strategy, count in zip(self.scaling["strategy"],
                                           self.scaling["recommended_devices"])}

    def plot(self) -> Figure:
        """Speedup (with the ideal line and the fitted law), efficiency and throughput
        against the device count, with the intervals as error bars; unreliable
        points hollow and grey, without error bars, and said why below; with a
        :attr:`forecast`, its speedup as a dashed "forecast on <hardware>" line."""
        return scaling_figure(self.frame, threshold=self.efficiency_threshold,
                              forecast=self.forecast)

    def plot_utilization(self) -> Figure:
        """Each device's utilization and memory over the sweep's time.

        Raises:
            ValueError: no device reported any counter (emulated devices have none).
        """
        return utilization_figure(self.samples, self.frame)

    def table(self) -> str:
        """The summary as a fixed-width text table (what the command line prints),
        with the :attr:`forecast` beside it."""
        return "\n".join([as_text(self.frame, self.scaling, self.confidence),
                          *forecast_notes(self)])

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the report to ``directory`` (created if needed) and return the paths.

        Files: ``summary.csv`` (:attr:`frame`), ``runs.csv`` (:attr:`runs`),
        ``scaling.png`` (:meth:`plot`), ``utilization.png`` (when devices were
        sampled) and ``report.html``, a self-contained page with the figures
        embedded, the tables and the environment.
        """
        return save_report(self, Path(directory))

    def __repr__(self) -> str:
        done = len(self.runs)
        state = f", interrupted after {done}/{self.planned_points}" if self.interrupted else ""
        return f"<SweepResult {self.name!r} id={self.sweep_id} points={done}{state}>"

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        """IPython's text display: the sweep's name and results file, the note on
        emulated devices (if any), then :meth:`table`."""
        printer.text(summary_text(self))

    def _repr_html_(self) -> str:
        """A notebook's display: the text display's content as HTML, escaped."""
        return summary_html(self)


class SweepInterrupted(KeyboardInterrupt):
    """A sweep was interrupted (Ctrl-C, or "interrupt kernel" in a notebook).

    Every point measured before the interrupt is in the results file and in
    :attr:`result`, so ``except SweepInterrupted as stop: stop.result.plot()`` works.
    """

    def __init__(self, result: SweepResult) -> None:
        super().__init__(
            f"Sweep {result.name!r} interrupted after {len(result.runs)} of "
            f"{result.planned_points} points; they are kept in {result.results_path} "
            f"(nbreplica.load_results({result.sweep_id!r}))."
        )
        self.result = result

"""``%%replicate --sweep``: re-run a cell over growing device counts and record it.

Every run is one point of a sweep stored like :func:`nbreplica.sweep`'s: the same
results file, records and speedup statistics, so ``%nbreplica_report``,
:func:`nbreplica.load_results` and the command line read both alike.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output

from nbreplica._errors import ResultsStoreError
from nbreplica.gpus.available import Accelerator
from nbreplica.bench import defaults
from nbreplica.bench.engine import Measured, StopSweep, SweepOutcome, SweepPlan, run_sweep
from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.multiworker import point_devices
from nbreplica.bench.progress import Progress, titled
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.schedule import Precision
from nbreplica.bench.result import SweepResult
from nbreplica.bench.store import ResultsStore
from nbreplica.forecasting.api import STRATEGIES as FORECAST_STRATEGIES
from nbreplica.forecasting.hardware import Hardware
from nbreplica.strategy.names import MULTIWORKER
from nbreplica.notebook.cell_parallel import CellRun, run_parallel
from nbreplica.notebook.forecast_cell import cell_forecast
from nbreplica.notebook.training import TrainingStats
from nbreplica.notebook.worker_cell import sweep_point_in_workers

#: How a cell sweep scales: the cell trains with its own batch size on every count.
SCALING = "strong"


def sweep_cell(shell: InteractiveShell, body: str, devices: Sequence[Accelerator],
               counts: Sequence[int], strategy: str, precision: Precision, *,
               name: str | None, monitor: bool, progress: Progress,
               forecast_on: Hardware | None = None,
               shares: str | Sequence[float] | None = None) -> SweepOutcome:
    """Run ``body`` once per point of the sweep over ``counts`` devices (1, the
    baseline, first in every repeat; see :mod:`nbreplica.bench.schedule`), store each
    measured point, and stop at the first error or interrupt (the points measured so
    far stay stored). The global batch size of each point is the one its run shows.
    ``"multiworker"`` runs the baseline on the first device, then the cell in each
    worker count, 1 included, of fresh local worker processes. ``shares`` (one per
    device of ``devices``, or a name ``replicate`` takes) split the ``"split"``
    points' batches; a point on fewer devices uses the first ones.

    Every run's output is captured: a failing run's is shown, and the last run's
    once the sweep has decided it is the last (an adaptive sweep decides as it
    goes). The namespace is the last run's. With ``forecast_on``, the model the last
    run trained is forecast on that machine (:attr:`SweepResult.forecast`), or a line
    says why it was not.

    Raises:
        UsageError: a run trained nothing, or with data of unknown batch size; the
            results file cannot be used (reported before the first run).
    """
    try:
        recorder = Recorder(ResultsStore(), name, SCALING, precision.target_ci)
    except ResultsStoreError as error:
        raise UsageError(str(error)) from None

    def make_point(kind: str, count: int, repeat: int) -> Point:
        # The global batch size is the one the run shows.
        return Point(kind, point_devices(kind, count, devices), repeat, None)

    swept = [count for count in sorted(counts) if count > 1 or strategy == MULTIWORKER]
    plan = SweepPlan([[(strategy, count) for count in swept]], precision, make_point,
                     defaults.EFFICIENCY_THRESHOLD, defaults.CONFIDENCE)
    origin = time.monotonic()
    last_output: list[CapturedIO] = []
    last_run: list[CellRun] = []

    def measure(point: Point) -> Measured:
        with capture_output() as captured:
            run = (sweep_point_in_workers(shell, body, point.devices)
                   if point.strategy == MULTIWORKER else
                   run_parallel(shell, body, point.devices, point.strategy, monitor=monitor,
                                shares=shares))
        if run.error is not None:
            captured.show()
            raise StopSweep(run.error)
        last_output[:] = [captured]
        last_run[:] = [run]
        stats = _training(run)
        return Measured(dataclasses.replace(point, global_batch_size=stats.batch_size),
                        _measurement(run, stats, origin),
                        steps=stats.steps - stats.warmup_steps, warmup_steps=stats.warmup_steps)

    title = f"Sweep of the cell over {', '.join(str(n) for n in sorted({1, *counts}))} devices"
    outcome = run_sweep(plan, recorder, measure, progress,
                        titled(title, devices),
                        after_last=lambda: last_output[0].show())
    if forecast_on is not None and outcome.error is None and last_run:
        _add_forecast(outcome.result, last_run[0], forecast_on, strategy)
    return outcome if recorder.records else SweepOutcome(None, outcome.error)


def _add_forecast(result: SweepResult, run: CellRun, hardware: Hardware, strategy: str) -> None:
    # Workers all-reduce their gradients, as MirroredStrategy does.
    forecast_strategy = strategy if strategy in FORECAST_STRATEGIES else "mirrored"
    try:
        result.forecast = cell_forecast(run, hardware, forecast_strategy)
    except (TypeError, ValueError) as error:
        print(error)


def _training(run: CellRun) -> TrainingStats:
    """What the run trained, if a sweep can measure it."""
    stats = run.training
    if stats is None:
        raise UsageError(
            "--sweep measures training throughput, but the cell trained no model: no "
            "Model.fit step ran. Put the training (model.fit(...)) in the cell. "
            f"Received: a cell that ran {run.wall_s:.2f} s without training"
        )
    if stats.samples_per_s is None or stats.batch_size is None:
        raise UsageError(
            "--sweep needs to count the samples the cell trains on: fit the model on "
            "arrays or a batched tf.data.Dataset. Received: Model.fit data of unknown "
            "batch size (a generator, an iterator or a PyDataset)"
        )
    return stats


def _measurement(run: CellRun, stats: TrainingStats, origin: float) -> Measurement:
    samples = run.samples.assign(time=run.samples["time"] + (run.started - origin))
    return Measurement(
        **stats.timing_fields(),
        samples=samples,
        peak_memory_bytes={u.device.index: u.peak_memory_bytes for u in run.usage or ()
                           if u.peak_memory_bytes is not None},
        mean_utilization={u.device.index: u.mean_utilization for u in run.usage or ()
                          if u.mean_utilization is not None},
        split=next((fit.split for fit in run.fits if fit.split is not None), None),
    )

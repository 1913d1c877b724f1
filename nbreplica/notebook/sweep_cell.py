"""``%%replicate --sweep``: re-run a cell over growing device counts and record it.

Every run is one point of a sweep stored like :func:`nbreplica.sweep`'s: the same
results file, records and speedup statistics, so ``%nbreplica_report``,
:func:`nbreplica.load_results` and the command line read both alike.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from nbreplica._errors import ResultsStoreError
from nbreplica.accelerators import Accelerator
from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.multiworker import point_devices
from nbreplica.bench.progress import Progress, TimeLeft
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.result import SweepResult
from nbreplica.bench.schedule import Precision, Schedule
from nbreplica.bench.store import ResultsStore
from nbreplica.bench.strategies import MULTIWORKER
from nbreplica.notebook.cell_parallel import CellRun, run_parallel
from nbreplica.notebook.training import TrainingStats
from nbreplica.notebook.worker_cell import sweep_point_in_workers

#: How a cell sweep scales: the cell trains with its own batch size on every count.
SCALING = "strong"
#: The statistics' settings, as :func:`nbreplica.sweep`'s defaults.
EFFICIENCY_THRESHOLD = 0.7
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SweepOutcome:
    """What a cell sweep measured, and why it stopped early, if it did."""

    result: SweepResult | None
    """The measured points; ``None`` when not even the first was measured."""
    error: BaseException | None
    """The body's error or the ``KeyboardInterrupt`` that stopped the sweep."""


def sweep_cell(shell: InteractiveShell, body: str, devices: Sequence[Accelerator],
               counts: Sequence[int], strategy: str, precision: Precision, *,
               name: str | None, monitor: bool, progress: Progress) -> SweepOutcome:
    """Run ``body`` once per point of the sweep over ``counts`` devices (1, the
    baseline, first in every repeat; see :mod:`nbreplica.bench.schedule`), store each
    measured point, and stop at the first error or interrupt (the points measured so
    far stay stored). The global batch size of each point is the one its run shows.
    ``"multiworker"`` runs the baseline on the first device, then the cell in each
    worker count, 1 included, of fresh local worker processes.

    Every run's output is captured: a failing run's is shown, and the last run's
    once the sweep has decided it is the last (an adaptive sweep decides as it
    goes). The namespace is the last run's.

    Raises:
        UsageError: a run trained nothing, or with data of unknown batch size; the
            results file cannot be used (reported before the first run).
    """
    try:
        recorder = Recorder(ResultsStore(), name, SCALING, precision.target_ci)
    except ResultsStoreError as error:
        raise UsageError(str(error)) from None

    def make_point(kind: str, count: int, repeat: int) -> Point:
        return Point(kind, point_devices(kind, count, devices), repeat, 0)

    swept = [count for count in sorted(counts) if count > 1 or strategy == MULTIWORKER]
    schedule = Schedule([[(strategy, count) for count in swept]], precision, make_point=make_point,
                        widths=lambda: recorder.widths(CONFIDENCE), time_left=TimeLeft())
    origin = time.monotonic()
    error: BaseException | None = None
    progress.start(schedule.planned, "Sweep of the cell over "
                   f"{', '.join(str(n) for n in sorted({1, *counts}))} devices")
    runs = iter(schedule)
    try:
        point = next(runs, None)
        while point is not None:
            progress.update(schedule.status(point))
            with capture_output() as captured:
                run = (sweep_point_in_workers(shell, body, point.devices)
                       if point.strategy == MULTIWORKER else
                       run_parallel(shell, body, point.devices, point.strategy,
                                    monitor=monitor))
            schedule.time_left.add(point, run.wall_s)
            if run.error is not None:
                captured.show()
                error = run.error
                break
            stats = _training(run)
            recorder.record(
                dataclasses.replace(point, global_batch_size=stats.batch_size),
                _measurement(run, stats, origin),
                steps=stats.steps - stats.warmup_steps, warmup_steps=stats.warmup_steps,
            )
            upcoming = next(runs, None)
            if upcoming is None:
                captured.show()  # the last run's output shows as usual
            point = upcoming
    except KeyboardInterrupt as interrupt:
        error = interrupt
    except BaseException:
        progress.finish(f"Failed after {len(recorder.records)} of {schedule.planned} "
                        "points", "failed")
        raise
    outcome = ("completed" if error is None else
               "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
    progress.finish(schedule.outcome() if error is None else
                    f"{outcome.capitalize()} after {len(recorder.records)} of "
                    f"{schedule.planned} points", outcome)
    result = recorder.result(
        schedule.planned, interrupted=error is not None,
        efficiency_threshold=EFFICIENCY_THRESHOLD, confidence=CONFIDENCE,
    ) if recorder.records else None
    return SweepOutcome(result, error)


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
        model_name=stats.model_name,
        params=stats.params,
        first_step_s=stats.first_step_s,
        samples_per_s=stats.samples_per_s,
        step_time_p50_s=stats.step_time_p50_s,
        step_time_p90_s=stats.step_time_p90_s,
        step_time_sd_s=stats.step_time_sd_s,
        samples=samples,
        peak_memory_bytes={u.device.index: u.peak_memory_bytes for u in run.usage or ()
                           if u.peak_memory_bytes is not None},
        mean_utilization={u.device.index: u.mean_utilization for u in run.usage or ()
                          if u.mean_utilization is not None},
    )


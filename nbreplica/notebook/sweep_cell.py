"""``%%replicate --sweep``: re-run a cell over growing device counts and record it.

Every run is one point of a sweep stored like :func:`nbreplica.sweep`'s: the same
results file, records and speedup statistics, so ``%nbreplica_report``,
:func:`nbreplica.load_results` and the command line read both alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from nbreplica.accelerators import Accelerator
from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.progress import Progress, TimeLeft
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.result import SweepResult
from nbreplica.bench.store import ResultsStore
from nbreplica.bench.multiworker import worker_slots
from nbreplica.bench.strategies import BASELINE, MULTIWORKER
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


def plan_points(devices: Sequence[Accelerator], counts: Sequence[int], strategy: str,
                repeats: int) -> list[Point]:
    """Every run in order: per repeat, each device count from the smallest (1, the
    baseline every speedup is measured against) to the largest. ``"multiworker"``
    runs the baseline on the first device, then each worker count, 1 included. The
    global batch size is filled in once a run has shown it."""
    if strategy == MULTIWORKER:
        return [point for repeat in range(1, repeats + 1) for point in (
            Point(BASELINE, tuple(devices[:1]), repeat, 0),
            *(Point(MULTIWORKER, worker_slots(count), repeat, 0) for count in sorted(counts)),
        )]
    return [
        Point(strategy if count > 1 else BASELINE, tuple(devices[:count]), repeat, 0)
        for repeat in range(1, repeats + 1)
        for count in sorted(counts)
    ]


def sweep_cell(shell: InteractiveShell, body: str, points: Sequence[Point], *,
               name: str | None, monitor: bool, progress: Progress,
               backend: str = "local") -> SweepOutcome:
    """Run ``body`` once per point, store each measured point, and stop at the first
    error or interrupt (the points measured so far stay stored).

    Every run but the last has its output captured, shown only if it fails; the last
    run's output shows as usual, and the namespace is the last run's. Points of
    ``"multiworker"`` run in fresh worker processes of ``backend``.

    Raises:
        UsageError: a run trained nothing, or with data of unknown batch size.
    """
    recorder = Recorder(ResultsStore(), name, SCALING)
    origin = time.monotonic()
    time_left = TimeLeft()
    error: BaseException | None = None
    progress.start(len(points), f"Sweep of the cell over {_counts(points)} devices")
    try:
        for done, point in enumerate(points):
            progress.update(done, point.describe(), time_left.estimate(points[done:]))
            last = done == len(points) - 1
            with contextlib.nullcontext() if last else capture_output() as captured:
                run = (sweep_point_in_workers(shell, body, point.devices, backend)
                       if point.strategy == MULTIWORKER else
                       run_parallel(shell, body, point.devices, point.strategy,
                                    monitor=monitor))
            time_left.add(point, run.wall_s)
            if run.error is not None:
                if captured is not None:
                    captured.show()
                error = run.error
                break
            stats = _training(run)
            recorder.record(
                dataclasses.replace(point, global_batch_size=stats.batch_size),
                _measurement(run, stats, origin),
                steps=stats.steps - stats.warmup_steps, warmup_steps=stats.warmup_steps,
            )
    except KeyboardInterrupt as interrupt:
        error = interrupt
    except BaseException:
        progress.finish(f"Failed after {len(recorder.records)} of {len(points)} points",
                        "failed")
        raise
    outcome = ("completed" if error is None else
               "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
    progress.finish(f"{outcome.capitalize()} after {len(recorder.records)} of "
                    f"{len(points)} points", outcome)
    result = recorder.result(
        len(points), interrupted=error is not None,
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


def _counts(points: Sequence[Point]) -> str:
    return ", ".join(str(n) for n in sorted({len(point.devices) for point in points}))


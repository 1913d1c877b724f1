"""Sweep points on worker processes of this machine, one replica each, trained under
``MultiWorkerMirroredStrategy`` (:mod:`nbreplica.cluster`)."""

from __future__ import annotations

from collections.abc import Sequence

from nbreplica.gpus.available import Accelerator
from nbreplica.bench.data import SweepData
from nbreplica.bench.measure import Measurement, ModelFn, Point, PointSettings, measure_point
from nbreplica.cluster import launch
from nbreplica.strategy.names import MULTIWORKER
from nbreplica.strategy.workers import WorkerProcess, worker_processes


def point_devices(strategy: str, count: int, devices: Sequence[Accelerator]
                  ) -> tuple[Accelerator, ...] | tuple[WorkerProcess, ...]:
    """What a point of ``strategy`` on ``count`` devices trains on: ``count`` worker
    processes for ``"multiworker"``, else the first ``count`` of ``devices``."""
    return worker_processes(count) if strategy == MULTIWORKER else tuple(devices[:count])


def measure_across_workers(point: Point, model_fn: ModelFn, data: SweepData,
                           settings: PointSettings) -> Measurement:
    """Measure ``point`` in fresh worker processes, one per worker
    process; the chief's
    measurement is the point's (every worker runs the same steps in lockstep)."""
    return launch(measure_point, point, model_fn, data, settings,
                  workers=len(point.devices))[0]

"""Sweep points on worker processes of this machine, one replica each, trained under
``MultiWorkerMirroredStrategy`` (:mod:`nbreplica.cluster`)."""

from __future__ import annotations

from collections.abc import Sequence

from nbreplica.accelerators import Accelerator
from nbreplica.bench.data import SweepData
from nbreplica.bench.measure import Measurement, ModelFn, Point, PointSettings, measure_point
from nbreplica.strategy.names import MULTIWORKER, WORKERS_LABEL
from nbreplica.cluster import launch


def worker_slots(count: int) -> tuple[Accelerator, ...]:
    """The "devices" of a point of ``count`` local workers: one per worker process."""
    return tuple(
        Accelerator(index=index, name=f"worker {index} ({WORKERS_LABEL})",
                    device=f"/job:worker/task:{index}", emulated=False)
        for index in range(count)
    )


def point_devices(strategy: str, count: int,
                  devices: Sequence[Accelerator]) -> tuple[Accelerator, ...]:
    """The devices of a point of ``strategy`` on ``count`` devices: one slot per
    worker process for ``"multiworker"``, else the first ``count`` of ``devices``."""
    return worker_slots(count) if strategy == MULTIWORKER else tuple(devices[:count])


def measure_across_workers(point: Point, model_fn: ModelFn, data: SweepData,
                           settings: PointSettings) -> Measurement:
    """Measure ``point`` in fresh worker processes, one per device slot; the chief's
    measurement is the point's (every worker runs the same steps in lockstep)."""
    return launch(measure_point, point, model_fn, data, settings,
                  workers=len(point.devices))[0]

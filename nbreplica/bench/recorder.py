"""Recording a sweep: each measured point becomes a stored run, paired with its baseline."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import datetime, timezone

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.result import SweepResult
from nbreplica.bench.stats import summarize, widths_by_kind
from nbreplica.bench.store import SAMPLE_COLUMNS, ResultsStore, RunRecord
from nbreplica.strategy.names import BASELINE


class Recorder:
    """Turns the measurements of one sweep into runs appended to ``store``.

    Every point's speedup is taken against the baseline (strategy ``"single"``)
    recorded in the same repeat: measured minutes apart at most, the pair shares the
    machine's state. Each repeat's baseline must therefore be recorded before the
    repeat's other points. Creating a recorder prepares ``store``
    (:meth:`ResultsStore.prepare`): an unusable results file is reported before
    anything is measured.

    Attributes:
        store: where every run is appended the moment it is recorded.
        sweep_id: a new id, unique to this sweep.
        name: the sweep's name; when ``None`` is given, the first record names it
            ``"<model name>-<scaling>-b<global batch size>"``.
        scaling: ``"strong"`` or ``"weak"``, stored with every run.
        target_ci: the interval width an adaptive sweep aims at (``None``: a fixed
            sweep), stored with every run.
        records: the runs recorded so far, in order.
    """

    def __init__(self, store: ResultsStore, name: str | None, scaling: str,
                 target_ci: float | None = None) -> None:
        store.prepare()
        self.store = store
        self.sweep_id = uuid.uuid4().hex[:12]
        self.name = name
        self.scaling = scaling
        self.target_ci = target_ci
        self.records: list[RunRecord] = []
        self._samples: list[pd.DataFrame] = []
        self._baselines: dict[int, float] = {}
        self._host = socket.gethostname()

    def record(self, point: Point, measurement: Measurement, *, steps: int,
               warmup_steps: int) -> None:
        """Store what ``point`` measured, as one run appended to :attr:`store`.

        Args:
            point: the measured point; its global batch size is the one trained on.
            measurement: what the point measured.
            steps: the steps the throughput and step times were measured over.
            warmup_steps: the steps run before those (the first traces the model).

        Raises:
            ValueError: ``point`` is not a baseline and its repeat has no baseline yet.
        """
        if point.strategy == BASELINE:
            self._baselines[point.repeat] = measurement.samples_per_s
        if point.repeat not in self._baselines:
            raise ValueError(
                f"Every repeat's baseline ({BASELINE!r} on one device) must be recorded "
                f"before its other points. Received: {point.describe()} before the "
                f"baseline of repeat {point.repeat}"
            )
        if self.name is None:
            self.name = f"{measurement.model}-{self.scaling}-b{point.global_batch_size}"
        speedup = measurement.samples_per_s / self._baselines[point.repeat]
        record = self._run_record(point, measurement, speedup, steps=steps,
                                  warmup_steps=warmup_steps)
        samples = measurement.samples.assign(
            sweep_id=self.sweep_id, strategy=point.strategy, devices=len(point.devices),
            repeat=point.repeat,
        )[SAMPLE_COLUMNS]
        self.store.append(record, samples)
        self.records.append(record)
        self._samples.append(samples)

    def _run_record(self, point: Point, measurement: Measurement, speedup: float, *,
                    steps: int, warmup_steps: int) -> RunRecord:
        count = len(point.devices)
        return RunRecord(
            **measurement.timing_fields(),
            sweep_id=self.sweep_id,
            sweep_name=self.name,
            strategy=point.strategy,
            scaling=self.scaling,
            devices=count,
            repeat=point.repeat,
            global_batch_size=point.global_batch_size,
            per_device_batch_size=point.global_batch_size / count,
            steps=steps,
            warmup_steps=warmup_steps,
            speedup=speedup,
            efficiency=speedup / count,
            **_device_counters(point, measurement),
            device_names="; ".join(device.name for device in point.devices),
            emulated=all(device.emulated for device in point.devices),
            host=self._host,
            tensorflow_version=tf.__version__,
            keras_version=keras.__version__,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            target_ci=self.target_ci,
            shares=measurement.split,
        )

    def runs(self) -> pd.DataFrame:
        """The runs recorded so far, as the results store returns them."""
        return pd.DataFrame([vars(record) for record in self.records],
                            columns=list(RunRecord.__dataclass_fields__))

    def widths(self, confidence: float) -> dict[tuple[str, int], float]:
        """The speedup intervals' relative widths so far, per (strategy, device count)
        (see :func:`nbreplica.bench.stats.relative_width`)."""
        return widths_by_kind(summarize(self.runs(), confidence))

    def result(self, planned_points: int, *, interrupted: bool,
               efficiency_threshold: float, confidence: float) -> SweepResult:
        """The sweep so far, as :func:`nbreplica.sweep` returns it.

        Args:
            planned_points: how many points the sweep meant to measure.
            interrupted: the sweep stopped before measuring all of them.
            efficiency_threshold, confidence: as :func:`nbreplica.sweep` takes them.
        """
        runs = self.runs()
        samples = pd.concat(self._samples, ignore_index=True) if self._samples else (
            pd.DataFrame(columns=SAMPLE_COLUMNS)
        )
        return SweepResult(
            runs, samples, name=self.name or "unnamed sweep", sweep_id=self.sweep_id,
            results_path=self.store.path, planned_points=planned_points,
            interrupted=interrupted, efficiency_threshold=efficiency_threshold,
            confidence=confidence,
        )


def _device_counters(point: Point, measurement: Measurement) -> dict[str, object]:
    """The run's peak memory and mean utilization, over all its devices and per device."""
    peaks, utilization = measurement.peak_memory_bytes, measurement.mean_utilization
    return {
        "peak_memory_bytes": max(peaks.values(), default=None),
        "mean_utilization": float(np.mean(list(utilization.values()))) if utilization else None,
        "device_metrics": json.dumps({
            str(device.index): {"peak_memory_bytes": peaks.get(device.index),
                                "mean_utilization": utilization.get(device.index)}
            for device in point.devices
        }),
    }

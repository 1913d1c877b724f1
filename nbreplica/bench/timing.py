"""The one timing record of sweeps, cells and the store.

:class:`StepTiming` holds the figures every measured training reports, whether a sweep
point measured it (:class:`~nbreplica.bench.measure.Measurement`), a cell's ``fit``
calls did (:class:`~nbreplica.notebook.training.TrainingStats`) or the results store
keeps it (:class:`~nbreplica.bench.store.RunRecord`, one per stored run).
:class:`~nbreplica.bench.step_timer.StepTimer` times the train-function calls behind
them. Nothing here imports TensorFlow, so stored results load without it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StepTiming:
    """How fast a model trained. Times in seconds; throughput in samples per second."""

    model: str
    """The model's name."""
    params: int
    first_step_s: float
    """Duration of the first train-function call (tracing and compilation included)."""
    samples_per_s: float
    step_time_p50_s: float
    step_time_p90_s: float
    step_time_sd_s: float
    """Standard deviation of the timed steps' durations; NaN with one timed step."""

    def timing_fields(self) -> dict[str, Any]:
        """The :class:`StepTiming` fields alone, by name (e.g. for a stored run)."""
        return {field.name: getattr(self, field.name)
                for field in dataclasses.fields(StepTiming)}


def step_figures(per_step: np.ndarray) -> dict[str, float]:
    """The step-time fields of :class:`StepTiming` from every timed step's duration."""
    return {
        "step_time_p50_s": float(np.percentile(per_step, 50)),
        "step_time_p90_s": float(np.percentile(per_step, 90)),
        "step_time_sd_s": spread(per_step),
    }


def spread(durations: np.ndarray) -> float:
    """The sample standard deviation of ``durations``; NaN with fewer than two."""
    return float(np.std(durations, ddof=1)) if durations.size > 1 else math.nan

"""The one timing record and the one timing callback of sweeps, cells and the store.

:class:`StepTiming` holds the figures every measured training reports, whether a sweep
point measured it (:class:`~nbreplica.bench.measure.Measurement`) or a cell's ``fit``
calls did (:class:`~nbreplica.notebook.training.TrainingStats`); the results store keeps
the same figures in every run. :class:`StepTimer` times the train-function calls
behind both.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import numpy as np

from nbreplica.bench.stats import spread


@dataclass(frozen=True)
class StepTiming:
    """How fast a model trained. Times in seconds; throughput in samples per second."""

    model_name: str
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


class Call(NamedTuple):
    """One train-function call: its first step (within the epoch), how many steps it
    ran, and when it began and ended (``time.perf_counter()``)."""

    first_step: int
    steps: int
    began: float
    ended: float

    @property
    def seconds(self) -> float:
        """How long the call took."""
        return self.ended - self.began


class StepTimer(keras.callbacks.Callback):
    """Times every train-function call of the ``fit`` it is given to.

    It is not ``async_safe``, so Keras converts each step's logs to Python numbers
    before calling it, which waits for the step to finish: the times are those of
    finished steps, not of dispatched ones.

    Attributes:
        calls: every call so far, in order.
        steps_per_epoch: the steps of each epoch, as ``fit`` planned them (``None``
            when unknown).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.steps_per_epoch: int | None = None
        self._began = (0, 0.0)

    def on_train_begin(self, logs: Any = None) -> None:
        self.steps_per_epoch = self.params.get("steps")

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._began = (batch, time.perf_counter())

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        first, began = self._began
        # ``batch`` is the last step of the call (several with steps_per_execution > 1).
        self.calls.append(Call(first, batch - first + 1, began, time.perf_counter()))

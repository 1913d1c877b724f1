"""The one timing callback of sweeps and cells: :class:`StepTimer`."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import keras


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

"""What a cell's ``Model.fit`` calls trained: samples, step times and throughput.

Keras does not report how many samples a step held, so each ``fit`` call's batch
layout is read from its arguments: arrays give the exact batch and epoch sizes; a
``tf.data.Dataset`` gives its batch size (from its element spec, or from its first
batch) and every step counts as a full batch; Python generators and ``PyDataset``s are
not inspected (consuming a batch would change what the model trains on), so their
steps are timed but not counted in samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nbreplica.bench.step_timer import Call, StepTimer
from nbreplica.bench.timing import StepTiming, step_figures
from nbreplica.replicator.model import ReplicatedModel

DEFAULT_BATCH_SIZE = 32  # what Model.fit uses for arrays when batch_size is None


@dataclass(frozen=True)
class BatchLayout:
    """How one ``fit`` call batches its data: the full batch size and, when the data
    are arrays, the training examples per epoch (the last batch may be partial)."""

    batch_size: int
    samples_per_epoch: int | None = None

    def samples(self, step: int, steps_per_epoch: int | None) -> int:
        """Examples in step ``step`` (0-based, within its epoch)."""
        if self.samples_per_epoch is None or steps_per_epoch is None:
            return self.batch_size
        if step < steps_per_epoch - 1:
            return self.batch_size
        return self.samples_per_epoch - (steps_per_epoch - 1) * self.batch_size


def batch_layout(fit_arguments: dict[str, Any]) -> BatchLayout | None:
    """The batch layout of a ``fit`` call from its bound arguments; ``None`` when it
    cannot be told without consuming data."""
    x = fit_arguments.get("x")
    if isinstance(x, tf.data.Dataset):
        size = _dataset_batch_size(x)
        return BatchLayout(size) if size else None
    if x is None or isinstance(x, keras.utils.PyDataset) or hasattr(x, "__next__"):
        return None  # a generator or iterator: reading a batch would consume it
    leaves = tf.nest.flatten(x)
    if not leaves or not np.ndim(leaves[0]):
        return None
    rows = int(np.shape(leaves[0])[0])
    split = float(fit_arguments.get("validation_split") or 0.0)
    if split:
        rows = int(np.floor(rows * (1.0 - split)))  # Keras's train/validation split
    batch_size = fit_arguments.get("batch_size") or DEFAULT_BATCH_SIZE
    if fit_arguments.get("steps_per_epoch"):
        return BatchLayout(batch_size)
    return BatchLayout(min(batch_size, rows), rows)


def _dataset_batch_size(dataset: tf.data.Dataset) -> int | None:
    first = tf.nest.flatten(dataset.element_spec)[0]
    if first.shape.rank and first.shape[0] is not None:
        return int(first.shape[0])
    # Batched without drop_remainder: the batch dimension is only known from a batch.
    for batch in dataset.take(1):
        return int(tf.shape(tf.nest.flatten(batch)[0])[0])
    return None


@dataclass
class FitRecord:
    """One ``fit`` call: its model (the template of a replicated one), batch layout and
    the timer of its train-function calls."""

    model: keras.Model
    layout: BatchLayout | None
    timer: StepTimer = field(default_factory=StepTimer)
    split: str | None = None
    """How the replicated model split each batch (``ReplicatedModel.split``);
    ``None`` for a model trained unsplit."""

    @property
    def calls(self) -> list[Call]:
        """The train-function calls timed so far."""
        return self.timer.calls

    def samples(self, first_step: int, steps: int) -> int | None:
        """Examples in ``steps`` steps from ``first_step``; ``None`` if unknown."""
        if self.layout is None:
            return None
        return sum(self.layout.samples(first_step + i, self.timer.steps_per_epoch)
                   for i in range(steps))


@dataclass(frozen=True)
class TrainingStats(StepTiming):
    """What the cell's training did, summed over its ``fit`` calls.

    The steady-state figures leave out the first train-function call of every
    ``fit`` (tracing, compilation and pipeline start-up), unless no other call was
    made. ``samples_per_s`` and ``batch_size`` are ``None`` when the data's batch size
    could not be told (generators, ``PyDataset``).
    """

    samples_per_s: float | None  # type: ignore[assignment]
    fits: int
    steps: int
    warmup_steps: int
    """Steps left out of the steady-state figures (in the first call of each fit)."""
    samples: int | None
    batch_size: int | None
    steps_per_s: float


class FitObserver:
    """Collects a :class:`FitRecord` for every ``fit`` it is asked to observe, and adds
    the callbacks that ``callbacks()`` makes to each."""

    def __init__(self, callbacks: Callable[[], list[keras.callbacks.Callback]] | None = None,
                 ) -> None:
        self.records: list[FitRecord] = []
        self._callbacks = callbacks

    def observe(self, model: keras.Model, fit_arguments: dict[str, Any]) -> None:
        """Add a timing callback to ``fit_arguments`` (the bound arguments of a
        ``fit`` call on ``model``, changed in place)."""
        callbacks = fit_arguments.get("callbacks")
        if isinstance(callbacks, keras.callbacks.CallbackList):
            return  # a ready-made CallbackList is used as is; adding to it would leak
        replicated = isinstance(model, ReplicatedModel)
        record = FitRecord(model.template if replicated else model,
                           batch_layout(fit_arguments),
                           split=model.split if replicated else None)
        self.records.append(record)
        added = self._callbacks() if self._callbacks is not None else []
        fit_arguments["callbacks"] = [*(callbacks or []), record.timer, *added]

    def stats(self) -> TrainingStats | None:
        """The training summed over every observed ``fit``; ``None`` if none ran a step."""
        timed = [record for record in self.records if record.calls]
        if not timed:
            return None
        every = [(record, call) for record in timed for call in record.calls]
        steady = [(record, call) for record in timed for call in record.calls[1:]] or every
        steps = sum(call.steps for _, call in steady)
        seconds = sum(call.seconds for _, call in steady)
        samples = _total_samples(steady)
        per_step = np.concatenate(
            [np.full(call.steps, call.seconds / call.steps) for _, call in steady]
        )
        first = timed[0]
        return TrainingStats(
            model=first.model.name,
            params=int(first.model.count_params()),  # built by its first step
            first_step_s=first.calls[0].seconds,
            samples_per_s=None if samples is None else samples / seconds,
            **step_figures(per_step),
            fits=len(timed),
            steps=sum(call.steps for _, call in every),
            warmup_steps=sum(call.steps for _, call in every) - steps,
            samples=_total_samples(every),
            batch_size=first.layout.batch_size if first.layout else None,
            steps_per_s=steps / seconds,
        )


def _total_samples(calls: list[tuple[FitRecord, Call]]) -> int | None:
    counts = [record.samples(call.first_step, call.steps) for record, call in calls]
    return None if any(count is None for count in counts) else sum(counts)


"""Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` with several workers, corrected.

Reason. Keras 3 cannot train under a ``tf.distribute.MultiWorkerMirroredStrategy`` of
two or more workers (keras-team/keras#20585, ray-project/ray#47464), for two reasons in
``keras/src/backend/tensorflow/trainer.py``:

1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first batch,
   which it first averages across replicas with ``strategy.reduce("MEAN", batch)``;
   across workers that fails ("Attempt to convert a value (PerReplica:{...}) to a
   Tensor"). Building needs only the batch's shapes: the correction builds from this
   worker's first local replica's batch.
2. ``reduce_per_replica`` averages every loss and metric across workers with
   ``axis=0``; scalars have no axis 0 ("Invalid reduction dimension 0 for input with 0
   dimensions"). The correction reduces rank-0 values with ``axis=None``.

Versions checked. Both functions are the same in Keras 3.10 to 3.15; the correction
was checked on Keras 3.14.0 (with TensorFlow 2.16.2) and 3.15.1 (with TensorFlow
2.21): two workers then give the losses and weights of a single-process
``MirroredStrategy`` over two devices.

Check by behaviour. :func:`apply` does not read the version: it runs each Keras
function with a recording stand-in strategy of several workers (:func:`still_needed`)
and corrects exactly the functions that still reduce a batch across workers, or a
rank-0 value with ``axis=0``. A Keras that has fixed one is left as it is for that one;
a Keras whose functions cannot be probed any more raises
:class:`~nbreplica._errors.NbreplicaError` naming what changed, rather than training
uncorrected. It is applied only in worker processes, and a test fails the day Keras
trains across workers without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer
from tensorflow.python.distribute import values as distribute_values

from nbreplica._errors import NbreplicaError

_original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
_original_reduce = trainer.reduce_per_replica


def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
    strategy = self._distribute_strategy
    if iterator is not None and _across_workers(strategy):
        for _, _, batches in iterator:
            data_batch = keras.tree.map_structure(
                lambda value: strategy.experimental_local_results(value)[0], next(batches)
            )
            break
        iterator = None
    _original_build(self, iterator=iterator, data_batch=data_batch)


def _reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
    if reduction not in ("auto", "mean") or not _across_workers(strategy):
        return _original_reduce(values, strategy, reduction)

    def mean(value: Any) -> Any:
        rank = strategy.experimental_local_results(value)[0].shape.rank
        return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)

    return keras.tree.map_structure(mean, values)


def _across_workers(strategy: Any) -> bool:
    return strategy is not None and trainer._collective_all_reduce_multi_worker(strategy)


class _RecordingStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """A stand-in for a strategy of several workers that records its reductions."""

    def __init__(self) -> None:  # no cluster: nothing of the real strategy is started
        self.reductions: list[tuple[str, int | None]] = []
        self._stand_in_extended = _MultiWorkerMode()

    @property
    def extended(self) -> Any:
        return self._stand_in_extended

    def reduce(self, reduce_op: Any, value: Any, axis: int | None = None) -> Any:
        self.reductions.append((str(reduce_op), axis))
        return value

    def experimental_local_results(self, value: Any) -> tuple[Any, ...]:
        return tuple(getattr(value, "values", (value,)))

    def scope(self) -> Any:
        return contextlib.nullcontext()


class _MultiWorkerMode:
    def _in_multi_worker_mode(self) -> bool:
        return True


class _BuildProbe:
    """What ``_maybe_symbolic_build`` sees of a model: its strategy and its build."""

    def __init__(self, strategy: _RecordingStrategy) -> None:
        self._distribute_strategy = self.distribute_strategy = strategy

    def _symbolic_build(self, data_batch: Any = None) -> None:
        pass


def _reduces_a_scalar_with_axis_0() -> bool:
    strategy = _RecordingStrategy()
    _original_reduce(tf.constant(1.0), strategy, "auto")
    return ("MEAN", 0) in strategy.reductions


def _reduces_the_first_batch() -> bool:
    strategy = _RecordingStrategy()
    batch = distribute_values.PerReplica((tf.constant([1.0]),))
    _original_build(_BuildProbe(strategy), iterator=[(None, None, iter([batch]))])
    return any(op == "MEAN" for op, _ in strategy.reductions)


_CORRECTIONS = {
    "symbolic_build": (trainer.TensorFlowTrainer, "_maybe_symbolic_build",
                       _original_build, _maybe_symbolic_build, _reduces_the_first_batch),
    "reduce_per_replica": (trainer, "reduce_per_replica", _original_reduce,
                           _reduce_per_replica, _reduces_a_scalar_with_axis_0),
}


def still_needed() -> dict[str, bool]:
    """Per correction, whether this Keras still has the bug it corrects.

    Raises:
        NbreplicaError: Keras's functions changed so that the probe cannot tell.
    """
    needed = {}
    for name, (*_, probe) in _CORRECTIONS.items():
        try:
            needed[name] = probe()
        except Exception as error:
            raise NbreplicaError(
                "nbreplica cannot tell whether this Keras still needs its multi-worker "
                f"correction {name!r} (checked on Keras 3.14 and 3.15): Keras's "
                "trainer changed. Train with a Keras version nbreplica supports. "
                f"Received: keras {keras.__version__}, {type(error).__name__}: {error}"
            ) from error
    return needed


def apply() -> list[str]:
    """Correct this process's Keras where it still has the bugs; return the
    corrections applied."""
    applied = [name for name, needed in still_needed().items() if needed]
    for name in applied:
        owner, attribute, _, corrected, _ = _CORRECTIONS[name]
        setattr(owner, attribute, corrected)
    return applied


@contextlib.contextmanager
def uncorrected(*names: str) -> Iterator[None]:
    """Within the context, Keras runs without the named corrections
    (``"symbolic_build"``, ``"reduce_per_replica"``; all if none are named): how a
    test checks whether Keras still needs them."""
    chosen = {name: _CORRECTIONS[name] for name in names or _CORRECTIONS}
    current = {name: getattr(owner, attr) for name, (owner, attr, *_) in chosen.items()}
    for owner, attr, original, *_ in chosen.values():
        setattr(owner, attr, original)
    try:
        yield
    finally:
        for name, (owner, attr, *_) in chosen.items():
            setattr(owner, attr, current[name])

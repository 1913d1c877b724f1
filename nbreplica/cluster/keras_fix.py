"""Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` with several workers, corrected.

Keras 3 cannot train under a ``tf.distribute.MultiWorkerMirroredStrategy`` of two or
more workers (keras-team/keras#20585, ray-project/ray#47464), for two reasons in
``keras/src/backend/tensorflow/trainer.py``:

1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first batch,
   which it first averages across replicas with ``strategy.reduce("MEAN", batch)``;
   across workers that fails ("Attempt to convert a value (PerReplica:{...}) to a
   Tensor"). Building needs only the batch's shapes: the correction builds from this
   worker's first local replica's batch.
2. ``reduce_per_replica`` averages every loss and metric across workers with
   ``axis=0``; scalars have no axis 0 ("Invalid reduction dimension 0 for input with 0
   dimensions"). The correction reduces rank-0 values with ``axis=None``.

Both functions are the same in Keras 3.10 to 3.15. The correction was checked on
Keras 3.14 (with TensorFlow 2.16.2) and 3.15 (with TensorFlow 2.21): two workers then
give the losses and weights of a single-process ``MirroredStrategy`` over two devices.
It is applied only in worker processes, only on those Keras versions (others are left
as they are, with a warning), and a test fails the day Keras trains across workers
without it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import keras
from keras.src.backend.tensorflow import trainer

#: Keras versions (major, minor) the correction was checked on.
CHECKED_VERSIONS = ((3, 14), (3, 15))

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


_CORRECTIONS = {
    "symbolic_build": (trainer.TensorFlowTrainer, "_maybe_symbolic_build",
                       _original_build, _maybe_symbolic_build),
    "reduce_per_replica": (trainer, "reduce_per_replica", _original_reduce,
                           _reduce_per_replica),
}


def is_checked(version: str = keras.__version__) -> bool:
    """Whether the correction was checked on Keras ``version``."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) in CHECKED_VERSIONS


def apply() -> bool:
    """Correct this process's Keras if its version was checked; return whether it was."""
    if not is_checked():
        warnings.warn(
            f"nbreplica's multi-worker correction of Keras was checked on Keras "
            f"{', '.join(f'{a}.{b}' for a, b in CHECKED_VERSIONS)} only and is not "
            f"applied: Keras's fit may fail across workers. Received: keras "
            f"{keras.__version__}",
            stacklevel=2,
        )
        return False
    for owner, name, _, corrected in _CORRECTIONS.values():
        setattr(owner, name, corrected)
    return True


@contextlib.contextmanager
def uncorrected(*names: str) -> Iterator[None]:
    """Within the context, Keras runs without the named corrections
    (``"symbolic_build"``, ``"reduce_per_replica"``; all if none are named): how a
    test checks whether Keras still needs them."""
    chosen = {name: _CORRECTIONS[name] for name in names or _CORRECTIONS}
    current = {name: getattr(owner, attr) for name, (owner, attr, _, _) in chosen.items()}
    for owner, attr, original, _ in chosen.values():
        setattr(owner, attr, original)
    try:
        yield
    finally:
        for name, (owner, attr, _, _) in chosen.items():
            setattr(owner, attr, current[name])

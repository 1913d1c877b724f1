"""The sweep's input pipeline: arrays or a tf.data dataset, re-batched per point."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


class SweepData:
    """Training data that can be served in batches of any global size, endlessly.

    ``x``/``y`` are what ``Model.fit`` accepts as arrays (a NumPy array, or a list or
    dict of them), or ``x`` is a ``tf.data.Dataset`` of *batches* (as ``fit`` expects)
    and ``y`` is ``None``; its batches are re-cut to each point's global batch size.
    Data given as arrays can be pickled, and so sent to worker processes.
    """

    def __init__(self, x: Any, y: Any = None) -> None:
        #: ``(x, y)`` as given, or ``None`` for a dataset.
        self.arrays = None if isinstance(x, tf.data.Dataset) else (x, y)
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError(
                    "When x is a tf.data.Dataset it must yield the targets too; pass "
                    f"y=None. Received: y of type {type(y).__name__}"
                )
            self._examples = x.unbatch()
            self._size: int | None = None
        else:
            arrays = x if y is None else (x, y)
            self._size = _sample_count(arrays)
            self._examples = tf.data.Dataset.from_tensor_slices(arrays)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.arrays is None:
            raise TypeError("A tf.data.Dataset cannot be sent to worker processes; "
                            "give a sweep arrays instead. Received: a tf.data.Dataset")
        return (SweepData, self.arrays)

    def check_covers(self, global_batch_size: int) -> None:
        """Raise if the data holds fewer examples than one batch of this size."""
        if self._size is not None:
            available = self._size
        else:
            available = int(
                self._examples.take(global_batch_size).reduce(0, lambda count, _: count + 1)
            )
        if available < global_batch_size:
            raise ValueError(
                f"The data holds fewer examples than one global batch of "
                f"{global_batch_size}, the largest this sweep uses. Pass more data or a "
                f"smaller batch_size. Received: x with {available} examples"
            )

    def batches(self, global_batch_size: int) -> tf.data.Dataset:
        """An endless dataset of full batches of ``global_batch_size`` examples."""
        return (
            self._examples.repeat()
            .batch(global_batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )


def _sample_count(arrays: Any) -> int:
    leaves = tf.nest.flatten(arrays)
    if not leaves:
        raise ValueError(f"x holds no arrays. Received: x={arrays!r}")
    counts = {np.shape(leaf)[0] if np.ndim(leaf) else 0 for leaf in leaves}
    if len(counts) != 1:
        raise ValueError(
            "Every array in x and y must hold the same number of examples. "
            f"Received: lengths {sorted(counts)}"
        )
    return counts.pop()

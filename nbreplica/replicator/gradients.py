"""Combine the replicas' gradients of each weight into the gradient of the batch.

Dense gradients are summed on the weight's device. Sparse gradients
(``tf.IndexedSlices``, e.g. an ``Embedding``'s) stay sparse: the replicas' rows are
concatenated in replica order, which is the order of the batch, so the optimizer
receives exactly the gradient it would get on one device (and Adam, say, takes the same
sparse path).

Fewer, larger transfers were measured on emulated devices (logical CPUs), MLP
benchmark at 8 devices, and none pays, so none is done: packing each replica's dense
gradients into one buffer before they leave its device (about 20% slower: the extra
copies), packing the weights into one buffer that each replica splits without copying
(CPU time per step 4% higher), packing only the small ones (no change), and summing in
a tree rather than on one device (no change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import tensorflow as tf

Gradient = Union[tf.Tensor, tf.IndexedSlices, None]


def combine_gradients(per_replica: Sequence[Sequence[Gradient]],
                      variables: Sequence[tf.Variable]) -> list[Gradient]:
    """Per variable, the sum of the replicas' gradients (``per_replica[r][v]``), on
    the variable's device."""
    combined: list[Gradient] = []
    for variable, parts in zip(variables, zip(*per_replica)):
        present = [p for p in parts if p is not None]
        with tf.device(variable.device):
            combined.append(_sum(present))
    return combined


def _sum(parts: list[Gradient]) -> Gradient:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, tf.IndexedSlices) for p in parts):
        return tf.IndexedSlices(values=tf.concat([p.values for p in parts], 0),
                                indices=tf.concat([p.indices for p in parts], 0),
                                dense_shape=parts[0].dense_shape)
    return tf.add_n([tf.convert_to_tensor(p) for p in parts])

"""Split one batch into per-device sub-batches and merge per-device outputs back.

The plan never hands a device an empty sub-batch (some kernels, e.g. oneDNN's Conv2D,
mis-shape zero-row inputs, and a string model may turn an empty row into a zero-length
sequence): a batch smaller than the device count is padded up to one row per device
with copies of its last row, which any model can process whatever the input's dtype
(a batch without rows, having none to copy, is padded with zero rows).
The merged output is cut back to the real rows and the copies get zero gradient seeds,
so padded rows reach neither the result nor the gradients.

Dense, ragged (``tf.RaggedTensor``) and sparse (``tf.SparseTensor``) inputs are split
by rows alike.

With shares (``replicate(model, shares=...)``) replica i gets about ``share_i`` of the
rows: its quota ``rows * share_i`` rounded down, and the rows left over go one each to
the largest fractional parts (largest remainder; ties to the lower replica). A replica
whose quota is below one row (a short last batch) gets exactly one, and the other
replicas share the remaining rows in their proportions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf


@dataclass(frozen=True)
class BatchPlan:
    """How one batch is laid out over ``devices`` replicas.

    ``sizes[i]`` rows go to replica i (the padded batch split as evenly as possible:
    no replica gets more than one row more than another; or by shares, see the module
    docstring), starting at row ``starts[i]``
    of the padded batch; ``real_rows[i]`` of them are real rows, and ``weights[i]`` is
    the share of the batch's real rows replica i holds, used to weight per-replica
    batch-mean losses.
    """

    batch_size: tf.Tensor
    sizes: tf.Tensor
    starts: tf.Tensor
    real_rows: tf.Tensor
    weights: tf.Tensor


def make_plan(batch_size: tf.Tensor, devices: int,
              shares: Sequence[float] | None = None) -> BatchPlan:
    """Plan the split of ``batch_size`` rows (a scalar int32 tensor) over ``devices``,
    evenly or by ``shares`` (one positive proportion per device, summing to 1)."""
    padded = tf.maximum(batch_size, devices)
    if shares is None:
        sizes = padded // devices + tf.cast(tf.range(devices) < padded % devices, tf.int32)
    else:
        sizes = shared_sizes(padded, shares)
    starts = tf.cumsum(sizes, exclusive=True)
    real_rows = tf.clip_by_value(batch_size - starts, 0, sizes)
    weights = tf.math.divide_no_nan(
        tf.cast(real_rows, tf.float32), tf.cast(batch_size, tf.float32)
    )
    return BatchPlan(batch_size=batch_size, sizes=sizes, starts=starts,
                     real_rows=real_rows, weights=weights)


def shared_sizes(rows: tf.Tensor, shares: Sequence[float]) -> tf.Tensor:
    """``rows`` (at least one per share) split by ``shares``: largest remainder, every
    replica at least one row (see the module docstring)."""
    count = len(shares)
    weights = tf.constant(shares, tf.float64)
    single = tf.zeros([count], tf.bool)
    # A replica below one row gets one, which can push another below: at most
    # ``count`` rounds settle it.
    for _ in range(count):
        pool = tf.cast(rows - tf.reduce_sum(tf.cast(single, tf.int32)), tf.float64)
        kept = tf.where(single, tf.zeros_like(weights), weights)
        quotas = pool * tf.math.divide_no_nan(kept, tf.reduce_sum(kept))
        single = single | (~single & (quotas < 1.0))
    floors = tf.floor(quotas)
    left = tf.cast(pool, tf.int32) - tf.reduce_sum(tf.cast(floors, tf.int32))
    fractions = tf.where(single, -tf.ones_like(quotas), quotas - floors)
    ranks = tf.argsort(tf.argsort(-fractions, stable=True), stable=True)
    bonus = tf.cast(ranks < left, tf.int32)
    return tf.where(single, tf.ones([count], tf.int32), tf.cast(floors, tf.int32) + bonus)


def batch_size_of(flat_inputs: Sequence[Any]) -> tf.Tensor | None:
    """The number of rows of the first input with a batch axis, or ``None`` when no
    input has one (a model without inputs)."""
    for tensor in flat_inputs:
        if isinstance(tensor, tf.SparseTensor):
            return tf.cast(tensor.dense_shape[0], tf.int32)
        if tensor is not None and tf.is_tensor(tensor) and tensor.shape.rank != 0:
            return tf.shape(tensor, out_type=tf.int32)[0]
    return None


def split(tensor: Any, plan: BatchPlan, devices: int) -> list[Any]:
    """Split ``tensor`` along axis 0 following ``plan`` (``None`` goes to every replica).

    A replica past the last real row gets a copy of the last row (only a batch smaller
    than ``devices`` has such replicas, each of one row).
    """
    if tensor is None:
        return [None] * devices
    if not isinstance(tensor, tf.SparseTensor) and tensor.shape.rank == 0:
        raise ValueError(
            "Every input of a replicated model needs a batch axis (axis 0) to split. "
            f"Received: an input of shape {tensor.shape}"
        )
    last_row = tf.maximum(plan.batch_size - 1, 0)
    parts = []
    for i in range(devices):
        begin = tf.minimum(plan.starts[i], last_row)
        parts.append(_rows(tensor, begin, plan.sizes[i]))
    return parts


def _rows(tensor: Any, begin: tf.Tensor, size: tf.Tensor) -> Any:
    """Rows ``begin .. begin + size - 1`` of ``tensor`` (fewer where it has fewer)."""
    if isinstance(tensor, tf.SparseTensor):
        rank = tf.size(tensor.dense_shape)
        start = tf.concat([[tf.cast(begin, tf.int64)], tf.zeros([rank - 1], tf.int64)], 0)
        extent = tf.concat([[tf.cast(size, tf.int64)], tensor.dense_shape[1:]], 0)
        return tf.sparse.slice(tensor, start, extent)
    rows = tensor[begin:begin + size]
    if isinstance(tensor, tf.RaggedTensor) or tensor.dtype == tf.string:
        return rows
    # A batch without rows has no row to copy: its replicas get zero rows instead.
    missing = size - tf.shape(rows, out_type=tf.int32)[0]
    padded = tf.pad(rows, tf.pad([[0, missing]], [[0, tf.rank(rows) - 1], [0, 0]]))
    padded.set_shape(tf.TensorShape([None]).concatenate(tensor.shape[1:]))
    return padded


def split_gradient(gradient: tf.Tensor, plan: BatchPlan, devices: int) -> list[tf.Tensor]:
    """Split the gradient of a merged output into the replicas' gradient seeds: each
    replica's rows of it, and zeros for the rows padding added."""
    missing_rows = tf.maximum(devices - plan.batch_size, 0)
    paddings = tf.pad([[0, missing_rows]], [[0, tf.rank(gradient) - 1], [0, 0]])
    padded = tf.pad(gradient, paddings)
    padded.set_shape(tf.TensorShape([None]).concatenate(gradient.shape[1:]))
    return tf.split(padded, plan.sizes, num=devices, axis=0)


def merge(parts: Sequence[Any], plan: BatchPlan) -> Any:
    """Merge one output's per-replica parts.

    Parts with a batch axis are concatenated along axis 0 in replica order and cut back
    to the real rows. Scalar (rank-0) parts, which have no rows to concatenate, become
    their mean weighted by each replica's share of the real rows, so a per-batch mean
    (the usual scalar output) equals the one the template computes on the whole batch.
    """
    if parts[0].shape.rank == 0:
        weights = tf.cast(plan.weights, parts[0].dtype)
        return tf.reduce_sum(tf.stack(parts) * weights)
    return tf.concat(list(parts), axis=0)[: plan.batch_size]

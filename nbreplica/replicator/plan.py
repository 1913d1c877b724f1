"""Split one batch into per-device sub-batches and merge per-device outputs back.

The plan never hands a device an empty sub-batch (some kernels, e.g. oneDNN's Conv2D,
mis-shape zero-row inputs): a batch smaller than the device count is padded with zero
rows up to one row per device, and the merged output is cut back to the real rows, so
padded rows reach neither the result nor the gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class BatchPlan:
    """How one batch is laid out over ``devices`` replicas.

    ``sizes[i]`` rows go to replica i (the padded batch split as evenly as possible:
    no replica gets more than one row more than another); ``weights[i]`` is the share
    of the *real* rows replica i holds, used to weight per-replica batch-mean losses.
    """

    batch_size: tf.Tensor
    sizes: tf.Tensor
    weights: tf.Tensor


def make_plan(batch_size: tf.Tensor, devices: int) -> BatchPlan:
    """Plan the split of ``batch_size`` rows (a scalar int32 tensor) over ``devices``."""
    padded = tf.maximum(batch_size, devices)
    sizes = padded // devices + tf.cast(tf.range(devices) < padded % devices, tf.int32)
    starts = tf.cumsum(sizes, exclusive=True)
    real_rows = tf.clip_by_value(batch_size - starts, 0, sizes)
    weights = tf.math.divide_no_nan(
        tf.cast(real_rows, tf.float32), tf.cast(batch_size, tf.float32)
    )
    return BatchPlan(batch_size=batch_size, sizes=sizes, weights=weights)


def batch_size_of(flat_inputs: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """The number of rows of the first input that is not ``None``."""
    for tensor in flat_inputs:
        if tensor is not None:
            return tf.shape(tensor, out_type=tf.int32)[0]
    raise ValueError(f"The model received no input tensor. Received: inputs={flat_inputs!r}")


def split(tensor: tf.Tensor | None, plan: BatchPlan, devices: int) -> list[tf.Tensor | None]:
    """Split ``tensor`` along axis 0 following ``plan`` (``None`` goes to every replica)."""
    if tensor is None:
        return [None] * devices
    if tensor.shape.rank == 0:
        raise ValueError(
            "Every input of a replicated model needs a batch axis (axis 0) to split. "
            f"Received: an input of shape {tensor.shape}"
        )
    missing_rows = tf.maximum(devices - plan.batch_size, 0)
    paddings = tf.pad([[0, missing_rows]], [[0, tf.rank(tensor) - 1], [0, 0]])
    padded = tf.pad(tensor, paddings)
    # Dynamic paddings hide the static shape; layers need it (Keras's Conv picks an
    # XLA kernel when it cannot see the channel count).
    padded.set_shape(tf.TensorShape([None]).concatenate(tensor.shape[1:]))
    return tf.split(padded, plan.sizes, num=devices, axis=0)


def merge(parts: Sequence[tf.Tensor], plan: BatchPlan) -> tf.Tensor:
    """Merge one output's per-replica parts.

    Parts with a batch axis are concatenated along axis 0 in replica order and cut back
    to the real rows. Scalar (rank-0) parts, which have no rows to concatenate, become
    their mean weighted by each replica's share of the real rows, so a per-batch mean
    (the usual scalar output) equals the one the template computes on the whole batch.
    """
    if parts[0].shape.rank == 0:
        weights = tf.cast(plan.weights, parts[0].dtype)
        return tf.reduce_sum(tf.stack(parts) * weights)
    return tf.concat(parts, axis=0)[: plan.batch_size]

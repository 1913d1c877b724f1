"""Combine the replicas' gradients of each weight into the gradient of the batch.

Dense gradients are summed on the weight's device. Sparse gradients
(``tf.IndexedSlices``, e.g. an ``Embedding``'s) stay sparse and get the rows they get on
one device, because optimizers treat rows differently from their sum (Keras's Adam
squares each row before duplicate rows are added up). Where the batch sum happens
decides the rows:

- a lookup whose indices come from the batch (tokens) has one row per looked-up index
  on one device: the replicas' rows are concatenated in replica order, the order of the
  batch;
- a lookup whose indices do not depend on the batch's values (positions,
  ``ops.arange(seq_len)``, any constant index) has one row per index, already summed
  over the batch: the replicas' rows, the same indices in each, are added up.

A weight looked up several times gets one group of rows per lookup (TensorFlow
concatenates them); each group is combined by its own rule. In a traced step the rule is
read from the step's graph (do the indices depend on a replica's input values?); run
eagerly, there is no graph to read, and a group counts as batch-independent when every
replica looked up exactly the same indices.

Fewer, larger transfers were measured on emulated devices (logical CPUs), MLP
benchmark at 8 devices, and none pays, so none is done: packing each replica's dense
gradients into one buffer before they leave its device (about 20% slower: the extra
copies), packing the weights into one buffer that each replica splits without copying
(CPU time per step 4% higher), packing only the small ones (no change), and summing in
a tree rather than on one device (no change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import tensorflow as tf

Gradient = Union[tf.Tensor, tf.IndexedSlices, None]

#: Ops that read only the shape of their input: indices computed through them (say
#: ``range(shape(x)[1])``) do not depend on the batch's values.
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})


def combine_gradients(per_replica: Sequence[Sequence[Gradient]],
                      variables: Sequence[tf.Variable],
                      replica_inputs: Sequence[Sequence[Any]]) -> list[Gradient]:
    """Per variable, the gradient of the whole batch from the replicas' gradients
    (``per_replica[r][v]``), on the variable's device. ``replica_inputs[r]`` are the
    tensors replica ``r`` was called on."""
    combined: list[Gradient] = []
    for variable, parts in zip(variables, zip(*per_replica)):
        with tf.device(variable.device):
            combined.append(_combine(list(parts), replica_inputs))
    return combined


def _combine(parts: list[Gradient], replica_inputs: Sequence[Sequence[Any]]) -> Gradient:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    if len(present) == len(parts) and all(isinstance(p, tf.IndexedSlices) for p in parts):
        return _combine_sparse(parts, replica_inputs)
    return tf.add_n([tf.convert_to_tensor(p) for p in present])


def _combine_sparse(parts: list[tf.IndexedSlices],
                    replica_inputs: Sequence[Sequence[Any]]) -> tf.IndexedSlices:
    groups = [_lookups(p) for p in parts]
    if len({len(g) for g in groups}) != 1:
        groups = [[p] for p in parts]
    combined = [_combine_lookup(list(lookup), replica_inputs) for lookup in zip(*groups)]
    return tf.IndexedSlices(values=tf.concat([c.values for c in combined], 0),
                            indices=tf.concat([c.indices for c in combined], 0),
                            dense_shape=parts[0].dense_shape)


def _lookups(gradient: tf.IndexedSlices) -> list[tf.IndexedSlices]:
    """The groups of rows of ``gradient``, one per lookup: TensorFlow concatenates the
    rows of a weight's lookups into one ``IndexedSlices``."""
    values, indices = gradient.values, gradient.indices
    if not (_made_by(values, "ConcatV2") and _made_by(indices, "ConcatV2")
            and len(values.op.inputs) == len(indices.op.inputs)):
        return [gradient]
    pieces = []
    for v, i in zip(values.op.inputs[:-1], indices.op.inputs[:-1]):
        pieces.extend(_lookups(tf.IndexedSlices(v, i, gradient.dense_shape)))
    return pieces


def _combine_lookup(lookups: list[tf.IndexedSlices],
                    replica_inputs: Sequence[Sequence[Any]]) -> tf.IndexedSlices:
    """One lookup's rows over the replicas: concatenated where its indices come from
    the batch, added up where they do not."""
    if _is_graph_tensor(lookups[0].indices):
        if any(_depends_on(lookup.indices, inputs)
               for lookup, inputs in zip(lookups, replica_inputs)):
            return _concatenated(lookups)
        return _added_up(lookups)
    if _same_indices(lookups):
        return _added_up(lookups)
    return _concatenated(lookups)


def _concatenated(lookups: list[tf.IndexedSlices]) -> tf.IndexedSlices:
    return tf.IndexedSlices(values=tf.concat([s.values for s in lookups], 0),
                            indices=tf.concat([s.indices for s in lookups], 0),
                            dense_shape=lookups[0].dense_shape)


def _added_up(lookups: list[tf.IndexedSlices]) -> tf.IndexedSlices:
    """The replicas' rows added up row by row, when every replica has the same number
    of rows (a batch-independent lookup always does); concatenated otherwise."""
    counts = tf.stack([tf.shape(s.indices)[0] for s in lookups])
    values, indices = tf.cond(
        tf.reduce_all(tf.equal(counts, counts[0])),
        lambda: (tf.add_n([s.values for s in lookups]), lookups[0].indices),
        lambda: (tf.concat([s.values for s in lookups], 0),
                 tf.concat([s.indices for s in lookups], 0)))
    return tf.IndexedSlices(values, indices, lookups[0].dense_shape)


def _same_indices(lookups: list[tf.IndexedSlices]) -> bool:
    first = lookups[0].indices
    return all(s.indices.shape == first.shape and bool(tf.reduce_all(s.indices == first))
               for s in lookups[1:])


def _depends_on(tensor: tf.Tensor, sources: Sequence[Any]) -> bool:
    """Whether ``tensor``'s value is computed from the values of any of ``sources``
    (not only from their shapes), following the graph back from ``tensor``."""
    wanted = {s.ref() for s in tf.nest.flatten(sources, expand_composites=True)
              if _is_graph_tensor(s)}
    seen: set[Any] = set()
    pending = [tensor]
    while pending:
        current = pending.pop()
        if current.ref() in wanted:
            return True
        if current.ref() in seen:
            continue
        seen.add(current.ref())
        if current.op.type not in _SHAPE_OPS:
            pending.extend(current.op.inputs)
    return False


def _made_by(tensor: tf.Tensor, op_type: str) -> bool:
    return _is_graph_tensor(tensor) and tensor.op.type == op_type


def _is_graph_tensor(tensor: Any) -> bool:
    return tf.is_tensor(tensor) and hasattr(tensor, "op")  # eager tensors have no op

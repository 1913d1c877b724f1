"""The weight gradients one replica's step produces, read from its traced graph.

A trainable weight that the replica reads only to gather rows from it (an
``Embedding``'s table: ``GatherV2`` on axis 0) gets a sparse gradient, ``IndexedSlices``:
the gathered rows and their indices, whatever the table's size. A weight read any other
way gets a dense gradient: the whole weight. A weight the replica does not read gets no
gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from nbreplica.forecasting.traffic import tensor_bytes


def gradient_bytes(graph: Any, trainable: Iterable[Any], replica_scope: str
                   ) -> tuple[int, int]:
    """The bytes of the dense gradients, and of the sparse ones (rows and indices), that
    the ops named under ``replica_scope`` produce for the ``trainable`` variables
    captured by ``graph``."""
    handles = {id(variable.handle) for variable in trainable}
    dense = sparse = 0
    for external, resource in graph.captures:
        if id(external) not in handles:
            continue
        reads = [op.outputs[0] for op in resource.consumers()
                 if op.type == "ReadVariableOp" and replica_scope in op.name]
        uses = [(value, use) for value in reads for use in value.consumers()]
        if uses and all(_gathers_rows(use, value) for value, use in uses):
            sparse += sum(tensor_bytes(use.outputs[0]) + tensor_bytes(use.inputs[1])
                          for _, use in uses)
        elif uses:
            dense += tensor_bytes(reads[0])
    return dense, sparse


def _gathers_rows(op: Any, value: Any) -> bool:
    """Whether ``op`` gathers rows of ``value`` (and reads it no other way)."""
    return (op.type == "GatherV2" and op.inputs[0] is value
            and all(t is not value for t in op.inputs[1:])
            and tf.get_static_value(op.inputs[2]) == 0)

"""Where a replicated forward pass departs from one device: the layers (and operations)
of a functional model whose outputs differ while their inputs agree.

Every layer's output is made an output of one probe model sharing the model's
weights; the probe runs on one batch on one device, then replicated, both in training
mode, and the two runs are compared tensor by tensor. A layer called more than once
is compared at its first call; a layer fed by an uncompared tensor (a later call of a
shared layer) is never named, so every name found is the layer's own doing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from nbreplica.replicator.api import replicate
from nbreplica.replicator.fidelity.difference import relative_difference


def origins(model: keras.Model, batch: Any, gpus: int | Sequence[int] | None,
            threshold: float, shares: Sequence[float] | None = None) -> tuple[str, ...] | None:
    """The names of the layers and operations of ``model`` whose outputs on ``batch``
    differ by more than ``threshold`` between one device and ``gpus`` replicas while
    all their inputs agree, in graph order; ``None`` for a model without a graph to
    probe (a subclassed model). Runs ``model``'s layers in training mode once on one
    device and once replicated, so ``BatchNormalization``'s moving averages move."""
    try:
        inputs = model.inputs
    except AttributeError:
        return None
    operations = [op for op in getattr(model, "operations", model.layers)
                  if not isinstance(op, keras.layers.InputLayer)]
    produced = [keras.tree.flatten(op.output) for op in operations]
    flat = [tensor for tensors in produced for tensor in tensors]
    try:
        probe = keras.Model(inputs, flat)
    except ValueError:
        return None  # a layer's first call lies in another model's graph
    # The probe takes its inputs as a flat list: the model's, flattened alike.
    one = probe(keras.tree.flatten(batch), training=True)
    many = replicate(probe, gpus=gpus, shares=shares)(keras.tree.flatten(batch),
                                                      training=True)
    differs = {id(tensor): relative_difference(a, b) > threshold
               for tensor, a, b in zip(flat, one, many)}
    agree = {id(tensor) for tensor in keras.tree.flatten(inputs)}
    agree.update(key for key, differ in differs.items() if not differ)
    return tuple(
        op.name for op, tensors in zip(operations, produced)
        if any(differs[id(t)] for t in tensors)
        and all(id(t) in agree for t in keras.tree.flatten(op.input))
    )

"""The bytes a traced step moves between devices, read from its graph.

An op's input produced on another device is sent there once per step, whatever the
number of ops reading it on that device (TensorFlow sends one copy per tensor and
destination device). Its size is its static shape times its dtype's size. Every
transfer is given a kind:

- ``"weights"``: a variable's value read on its device and sent to where it is used;
- ``"gradients"``: a value sent to a variable's device to update it (a replica's
  weight gradient, a BatchNormalization moving statistic) or to be summed there;
- ``"batch"``: the batch, split on the host, sent to the devices;
- ``"activations"``: everything else (outputs to the merge device, their gradients
  back, losses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nbreplica.forecasting.placement import HOST, is_resource, op_devices

KINDS = ("batch", "weights", "gradients", "activations")
#: Ops that read a variable's value.
_READS = frozenset({"ReadVariableOp", "ResourceGather"})


@dataclass(frozen=True)
class Transfer:
    """One tensor sent from one device to another once per step."""

    source: str
    destination: str
    kind: str
    bytes: int
    tensor: str


def tensor_bytes(tensor: Any) -> int:
    """Static size of ``tensor`` in bytes (0 for an unknown shape or a string)."""
    shape = tensor.shape
    if shape.rank is None or not shape.is_fully_defined() or tensor.dtype.name == "string":
        return 0
    return int(shape.num_elements()) * tensor.dtype.size


def transfers(graph: Any, devices: dict[Any, str] | None = None) -> list[Transfer]:
    """Every tensor ``graph`` sends between devices, placed by ``devices`` (by default
    :func:`~nbreplica.forecasting.placement.op_devices` of the graph)."""
    devices = devices if devices is not None else op_devices(graph)
    batch_ops = _batch_ops(graph, devices)
    seen: set[tuple[str, str]] = set()
    found = []
    for op in devices:
        destination = devices[op]
        for tensor in op.inputs:
            source = devices.get(tensor.op, destination)
            if source == destination or is_resource(tensor):
                continue
            if (tensor.name, destination) in seen:
                continue
            seen.add((tensor.name, destination))
            kind = _kind(tensor, op, batch_ops)
            found.append(Transfer(source, destination, kind, tensor_bytes(tensor), tensor.name))
    return found


def _kind(tensor: Any, consumer: Any, batch_ops: set[Any]) -> str:
    if tensor.op.type in _READS:
        return "weights"
    if tensor.op in batch_ops:
        return "batch"
    if any(is_resource(t) for t in consumer.inputs) or consumer.type == "AddN":
        return "gradients"
    return "activations"


def _batch_ops(graph: Any, devices: dict[Any, str]) -> set[Any]:
    """The host ops computed from the step's arguments (the batch) and from nothing
    that comes from another device or a variable: the batch and its split."""
    arguments = {t.op for t in graph.inputs if not is_resource(t)}
    batch: set[Any] = set()
    tainted: set[Any] = set()  # read a variable, or a value from another device
    for op in devices:
        sources = [t.op for t in op.inputs]
        if devices[op] != HOST or op.type in _READS or any(s in tainted for s in sources):
            tainted.add(op)
        elif op in arguments or any(s in batch for s in sources):
            batch.add(op)
    return batch


def totals(found: Iterable[Transfer]) -> dict[tuple[str, str, str], int]:
    """Bytes per (source, destination, kind)."""
    summed: dict[tuple[str, str, str], int] = {}
    for transfer in found:
        key = (transfer.source, transfer.destination, transfer.kind)
        summed[key] = summed.get(key, 0) + transfer.bytes
    return summed

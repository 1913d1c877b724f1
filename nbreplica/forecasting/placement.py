"""Where each op of a traced step runs, as TensorFlow's placer would put it.

A forecast speaks of a GPU machine's devices: ``"host"`` and ``"gpu0"``, ``"gpu1"``, …
On emulated GPUs, TensorFlow's logical ``/device:CPU:k`` (k >= 1) stands for GPU k-1
and ``/device:CPU:0`` is the host (see :mod:`nbreplica.gpus.available`); a real
``/device:GPU:k`` is GPU k.

The placer's rules kept here: an op consuming a resource (a variable's read, assign or
update) runs where the resource lives, whatever device its scope asked for; an op with
no device that reads only its input's shape (``Shape``, ``Size``, ``Rank``) runs where
that input is; a constant with no device and one consumer runs where its consumer does;
any other op with no device runs on ``default``; a variable lives on
``variable_device`` when given (how a forecast puts weights where they would be on a
GPU machine), else where it was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

HOST = "host"
#: Ops that read only their input's shape: TensorFlow's placer puts them with it.
_METADATA = frozenset({"Shape", "ShapeN", "Size", "Rank"})


def gpu(index: int) -> str:
    """The forecast's name of GPU ``index``."""
    return f"gpu{index}"


def locate(device: str, default: str = HOST) -> str:
    """The forecast's device for a TensorFlow device string (``default`` when empty)."""
    if not device:
        return default
    spec = _parse(device)
    kind, index = spec
    if kind == "GPU":
        return gpu(index)
    return HOST if index == 0 else gpu(index - 1)


def _parse(device: str) -> tuple[str, int]:
    kind, index = "CPU", 0
    for part in device.split("/"):
        if part.lower().startswith("device:"):
            _, kind, number = part.split(":")
            index = int(number)
        elif part.upper().startswith(("CPU:", "GPU:")):
            kind, number = part.split(":")
            index = int(number)
    return kind.upper(), index


def is_resource(tensor: Any) -> bool:
    return tensor.dtype.name == "resource"


def op_devices(graph: Any, *, default: str = HOST,
               variable_device: str | None = None) -> dict[Any, str]:
    """Per op of ``graph`` (a traced function's graph) that runs (see
    :func:`live_ops`), the device it runs on.

    Function arguments (the batch) arrive on the host; captured variables live on
    ``variable_device`` (or where they were made).
    """
    captured = {internal.op: external for external, internal in graph.captures}
    live = live_ops(graph)
    devices: dict[Any, str] = {}
    for op in _topological(op for op in graph.get_operations() if op in live):
        devices[op] = _device_of(op, captured, devices, default, variable_device)
    for op in [op for op in devices if _is_generator(op, captured)]:
        consumers = [c for c in op.outputs[0].consumers() if c in devices]
        if len(consumers) == 1:
            devices[op] = devices[consumers[0]]
    return devices


def _is_generator(op: Any, captured: dict[Any, Any]) -> bool:
    """A constant-like op with no inputs, one output and no device asked for."""
    return (not op.inputs and len(op.outputs) == 1 and not op.device
            and op.type != "Placeholder" and op not in captured)


def _device_of(op: Any, captured: dict[Any, Any], devices: dict[Any, str], default: str,
               variable_device: str | None) -> str:
    if op in captured:
        external = captured[op]
        if is_resource(external) and variable_device is not None:
            return variable_device
        return locate(getattr(external, "device", ""), HOST)
    if op.type == "Placeholder":
        return HOST
    resources = [t for t in op.inputs if is_resource(t)]
    if resources:
        return devices[resources[0].op]
    if not op.device and op.type in _METADATA and op.inputs:
        return devices.get(op.inputs[0].op, default)
    return locate(op.device, default)


def live_ops(graph: Any) -> set[Any]:
    """The ops of ``graph`` that run: those its outputs or its stateful ops (variable
    updates) depend on. TensorFlow prunes the rest before running a function."""
    wanted = [t.op for t in graph.outputs]
    wanted += [op for op in graph.get_operations()
               if op.op_def is not None and op.op_def.is_stateful and op.type != "Placeholder"]
    live: set[Any] = set()
    while wanted:
        op = wanted.pop()
        if op in live:
            continue
        live.add(op)
        wanted.extend(t.op for t in op.inputs)
        wanted.extend(op.control_inputs)
    return live


def _topological(ops: Iterable[Any]) -> list[Any]:
    """``ops`` with every op after the ops it reads from (graphs list ops in creation
    order, which a gradient's ops added to the forward pass can break)."""
    ops = list(ops)
    known = set(ops)
    ordered: list[Any] = []
    done: set[Any] = set()
    for root in ops:
        stack = [(root, False)]
        while stack:
            op, expanded = stack.pop()
            if op in done:
                continue
            if expanded:
                done.add(op)
                ordered.append(op)
                continue
            stack.append((op, True))
            stack.extend((t.op, False) for t in op.inputs
                         if t.op in known and t.op not in done)
            stack.extend((c, False) for c in op.control_inputs if c in known and c not in done)
    return ordered

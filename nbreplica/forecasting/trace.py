"""Trace a model's replicated training step, without running it, into a profile.

The step is :func:`nbreplica.replicate`'s over two of this machine's devices (emulated
GPUs or real ones), traced into a function graph as ``tf.function`` traces it: the
graph TensorFlow would run, each op with its device. Nothing is computed and no weight
changes; only the optimizer is built if it was not (as ``fit`` would build it).

Only the graph is built: not the automatic control dependencies ``tf.function`` adds
between stateful ops (they order the ops, they carry no bytes and no work), nor the
function definition TensorFlow would hand to its runtime. That is most of what tracing
costs besides the ops themselves.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.framework import func_graph

from nbreplica.forecasting import flops, traffic
from nbreplica.forecasting.gradients import gradient_bytes
from nbreplica.forecasting.placement import locate, op_devices
from nbreplica.forecasting.profile import StepProfile
from nbreplica.gpus.available import list_devices
from nbreplica.replicator.api import replicate

_TRACE_DEVICES = 2


def check_model(model: Any) -> None:
    """Raise a clear error for a model whose step cannot be traced."""
    if not isinstance(model, keras.Model):
        raise TypeError("forecast expects a Keras model (keras.Model). "
                        f"Received: model={model!r} of type {type(model).__name__}")
    if not model.built:
        raise ValueError("forecast needs a built model to trace its training step: give it "
                         "an Input or call model.build(input_shape). "
                         f"Received: model={model.name!r} (built=False)")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError("forecast traces the training step, which needs an optimizer and a "
                         "loss: call model.compile(optimizer=..., loss=...) first. "
                         f"Received: model={model.name!r} (not compiled)")


def trace_split(model: keras.Model, per_replica_batch: int, cpu_merge: bool) -> StepProfile:
    """The profile of ``replicate(model, cpu_merge=cpu_merge)``'s training step at
    ``per_replica_batch`` rows per replica."""
    check_model(model)
    devices = list_devices()[:_TRACE_DEVICES]
    if len(devices) < _TRACE_DEVICES:
        raise ValueError(
            "forecast traces the replicated step over two devices, and this machine has "
            f"{len(devices)}: emulate GPUs with NBREPLICA_EMULATE_GPUS=2 (or "
            "nbreplica.emulate_gpus(2)) before TensorFlow starts. "
            f"Received: list_devices() with {len(devices)} devices")
    started = time.perf_counter()
    graph = _traced_graph(model, replicate(model, [d.index for d in devices], cpu_merge=cpu_merge),
                          per_replica_batch * _TRACE_DEVICES)
    placed = op_devices(graph)
    replica = locate(devices[1].device)
    found = traffic.transfers(graph, placed)
    update = _update_ops(placed)
    dense, sparse = gradient_bytes(graph, model.trainable_variables, "replica_1/")
    return StepProfile(
        per_replica_batch=per_replica_batch,
        replica=flops.work_of(op for op in placed if "replica_1/" in op.name),
        merge=flops.work_of(_merge_ops(placed, update)),
        update=flops.work_of(update),
        inbound=_by_kind(t for t in found if t.destination == replica),
        outbound=_by_kind(t for t in found if t.source == replica),
        label_bytes=_label_bytes(model, per_replica_batch),
        gradient_bytes=dense,
        sparse_gradient_bytes=sparse,
        parameter_bytes=_bytes_of(model.weights),
        trace_seconds=time.perf_counter() - started)


def _traced_graph(model: keras.Model, step_model: keras.Model, rows: int) -> Any:
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    specs = (_specs(model.inputs, rows), _specs(_targets(model), rows))
    try:
        return func_graph.func_graph_from_py_func(
            f"{model.name}_train_step", step_model.train_step, (specs,), {},
            add_control_dependencies=False)
    except Exception as exc:
        raise ValueError(
            f"forecast could not trace the training step of {model.name!r}: "
            f"{type(exc).__name__}: {exc}. Received: model={model.name!r}") from exc


def _targets(model: keras.Model) -> list[Any]:
    """Target specs like the outputs, or integer class ids for a sparse loss."""
    sparse = "sparse" in str(getattr(model, "loss", "")).lower() or any(
        "Sparse" in type(loss).__name__ for loss in tf.nest.flatten(getattr(model, "loss", None))
        if loss is not None)
    outputs = model.outputs
    if sparse:
        return [keras.KerasTensor(o.shape[:-1], dtype="int32") for o in outputs]
    return outputs


def _specs(tensors: list[Any], rows: int) -> Any:
    specs = [tf.TensorSpec((rows, *t.shape[1:]), t.dtype) for t in tensors]
    return specs[0] if len(specs) == 1 else tuple(specs)


def _update_ops(placed: dict[Any, str]) -> list[Any]:
    """The ops after the gradient sums (the optimizer's), off the replicas."""
    sums = {op for op in placed if op.type == "AddN" and "replica_" not in op.name}
    after: set[Any] = set(sums)
    for op in placed:
        if op not in after and any(t.op in after for t in op.inputs) \
                and "replica_" not in op.name:
            after.add(op)
    return [op for op in placed if op in after and op not in sums]


def _merge_ops(placed: dict[Any, str], update: list[Any]) -> list[Any]:
    skip = set(update)
    return [op for op in placed if "replica_" not in op.name and op not in skip
            and op.type != "AddN"]


def _by_kind(found: Any) -> dict[str, int]:
    summed = {kind: 0 for kind in traffic.KINDS}
    for transfer in found:
        summed[transfer.kind] += transfer.bytes
    return summed


def _label_bytes(model: keras.Model, rows: int) -> int:
    return sum(rows * int(max(1, _elements(t.shape[1:]))) * tf.as_dtype(t.dtype).size
               for t in _targets(model))


def _elements(shape: Any) -> int:
    count = 1
    for dim in shape:
        count *= int(dim or 1)
    return count


def _bytes_of(variables: list[Any]) -> int:
    return sum(_elements(v.shape) * tf.as_dtype(v.dtype).size for v in variables)

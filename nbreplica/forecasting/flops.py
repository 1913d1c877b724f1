"""The work of each op of a traced step, from its static shapes.

Matrix products and convolutions are counted in floating-point operations (a
multiply-add is two); every other op that launches a kernel is counted in the bytes
it reads and writes, since such ops (elementwise maths, normalization, pooling,
reductions, copies) are bound by memory bandwidth on a GPU. Ops that only describe
tensors (shapes, reshapes, constants, identities, variable handles) cost nothing, and
so do ops on integers and booleans alone (shape arithmetic, the batch's split plan):
TensorFlow keeps such small tensors in host memory and runs them between kernels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbreplica.forecasting.traffic import tensor_bytes

#: Ops that launch no kernel of their own, or move no data.
FREE_OPS = frozenset({
    "Const", "Placeholder", "Identity", "IdentityN", "Shape", "ShapeN", "Size", "Rank",
    "Reshape", "ExpandDims", "Squeeze", "NoOp", "StopGradient", "VarHandleOp",
    "ReadVariableOp", "BroadcastGradientArgs", "PreventGradient", "Snapshot", "_Arg",
    "_Retval",
})
_MATMULS = frozenset({"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"})
_CONVOLUTIONS = frozenset({
    "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "Conv3D",
    "Conv3DBackpropInputV2", "Conv3DBackpropFilterV2", "DepthwiseConv2dNative",
    "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"})


@dataclass
class Work:
    """Work on one device: FLOPs of matrix products and convolutions by compute dtype,
    bytes read and written by memory-bound ops, and kernels launched."""

    flops: dict[str, float] = field(default_factory=dict)
    memory_bytes: float = 0.0
    kernels: int = 0

    def add(self, other: "Work") -> "Work":
        flops = dict(self.flops)
        for dtype, value in other.flops.items():
            flops[dtype] = flops.get(dtype, 0.0) + value
        return Work(flops, self.memory_bytes + other.memory_bytes, self.kernels + other.kernels)

    @property
    def total_flops(self) -> float:
        return sum(self.flops.values())

    def scaled(self, factor: float) -> "Work":
        """This work on ``factor`` times the rows: FLOPs and bytes scale, the kernels
        launched do not."""
        return Work({dtype: value * factor for dtype, value in self.flops.items()},
                    self.memory_bytes * factor, self.kernels)


def op_work(op: Any) -> Work:
    """The work of one op."""
    if op.type in FREE_OPS or not any(_is_float(t) for t in [*op.inputs, *op.outputs]):
        return Work()
    flops = op_flops(op)
    if flops is not None:
        return Work({op.outputs[0].dtype.name: float(flops)}, 0.0, 1)
    moved = sum(tensor_bytes(t) for t in op.inputs if t.dtype.name != "resource")
    moved += sum(tensor_bytes(t) for t in op.outputs)
    return Work({}, float(moved), 1)


def work_of(ops: Iterable[Any]) -> Work:
    """The summed work of ``ops``."""
    total = Work()
    for op in ops:
        total = total.add(op_work(op))
    return total


def op_flops(op: Any) -> int | None:
    """FLOPs of a matrix product or convolution (``None`` for any other op)."""
    if op.type in _MATMULS:
        return _matmul_flops(op)
    if op.type in _CONVOLUTIONS:
        return _convolution_flops(op)
    return None


def _matmul_flops(op: Any) -> int:
    a = op.inputs[0].shape
    transposed = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    inner = a[-2] if transposed else a[-1]
    return 2 * _elements(op.outputs[0]) * int(inner)


def _convolution_flops(op: Any) -> int:
    """Two FLOPs per multiply-add of the forward convolution, which each backward
    convolution repeats: ``2 * output elements * window * input channels``."""
    if op.type.endswith("BackpropInput") or op.type.endswith("BackpropInputV2"):
        filter_shape, output = op.inputs[1].shape, op.inputs[2]
    elif "BackpropFilter" in op.type:
        filter_shape, output = op.outputs[0].shape, op.inputs[2]
    else:
        filter_shape, output = op.inputs[1].shape, op.outputs[0]
    window = math.prod(int(d) for d in filter_shape[:-2])
    if op.type.startswith("Depthwise"):
        return 2 * _elements(output) * window
    return 2 * _elements(output) * window * int(filter_shape[-2])


def _is_float(tensor: Any) -> bool:
    return tensor.dtype.is_floating


def _elements(tensor: Any) -> int:
    shape = tensor.shape
    return int(shape.num_elements()) if shape.is_fully_defined() else 0

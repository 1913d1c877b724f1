"""The work of a traced step: FLOPs of products and convolutions exactly as the
analytic formulas give them."""

from __future__ import annotations

from forecast_models import CHANNELS, CLASSES, D0, D1, D2, FILTERS, KERNEL, SIDE, convnet, mlp
from nbreplica.forecasting import trace

ROWS = 6


def test_mlp_replica_flops_are_its_forward_and_backward_products():
    profile = trace.trace_split(mlp(), ROWS, cpu_merge=True)
    forward = 2 * ROWS * (D0 * D1 + D1 * D2)
    # Backward: both weight gradients, and the hidden layer's input gradient; the
    # batch needs none.
    backward = 2 * ROWS * (D0 * D1 + D1 * D2) + 2 * ROWS * D1 * D2
    assert profile.replica.flops == {"float32": forward + backward}


def test_convnet_replica_flops_are_its_convolution_and_dense_products():
    side = SIDE - KERNEL + 1
    convolution = 2 * ROWS * side * side * FILTERS * KERNEL * KERNEL * CHANNELS
    dense = 2 * ROWS * side * side * FILTERS * CLASSES
    # Forward and filter gradient of the convolution (its input is the batch), and
    # forward, weight and input gradients of the dense layer.
    profile = trace.trace_split(convnet(), ROWS, cpu_merge=True)
    assert profile.replica.flops == {"float32": 2 * convolution + 3 * dense}


def test_memory_bound_work_and_kernels_are_counted_and_the_update_is_apart():
    profile = trace.trace_split(mlp("sgd"), ROWS, cpu_merge=True)
    assert profile.replica.memory_bytes > 0 and profile.replica.kernels > 0
    assert profile.update.total_flops == 0 and profile.update.memory_bytes > 0

"""Bytes between devices, counted from the traced graph: the analytic sizes exactly, and
what TensorFlow really sends on emulated devices."""

from __future__ import annotations

import pytest
import tensorflow as tf

import nbreplica
from forecast_models import (CHANNELS, CLASSES, D0, D1, D2, FILTERS, KERNEL, OUTPUTS, SIDE,
                             TOKENS, VOCABULARY, WIDTH, convnet, counted, embedding_model, mlp,
                             sent_by_tensorflow, traced_step)
from nbreplica.forecasting import placement, trace, traffic
from nbreplica.strategy.placements import mirrored_strategy

ROWS = 6  # per replica
FLOAT = INT32 = 4
MLP_WEIGHTS = (D0 * D1 + D1 + D1 * D2 + D2) * FLOAT
GATHERED_ROWS = ROWS * TOKENS * (WIDTH * FLOAT + INT32)  # the rows and their token ids
EMBEDDING_HEAD = (WIDTH * OUTPUTS + OUTPUTS) * FLOAT


def test_the_mlp_replica_moves_its_rows_the_weights_and_the_gradients():
    profile = trace.trace_split(mlp(), ROWS, cpu_merge=True)
    assert profile.inbound == {"batch": ROWS * D0 * FLOAT, "weights": MLP_WEIGHTS,
                               "gradients": 0, "activations": ROWS * D2 * FLOAT}
    assert profile.outbound == {"batch": 0, "weights": 0, "gradients": MLP_WEIGHTS,
                                "activations": ROWS * D2 * FLOAT}
    assert profile.gradient_bytes == profile.parameter_bytes == MLP_WEIGHTS
    assert profile.label_bytes == ROWS * D2 * FLOAT


def test_the_convnet_replica_moves_its_image_rows_and_every_weight_both_ways():
    conv_side = SIDE - KERNEL + 1
    weights = (KERNEL * KERNEL * CHANNELS * FILTERS + FILTERS
               + conv_side * conv_side * FILTERS * CLASSES + CLASSES) * FLOAT
    profile = trace.trace_split(convnet(), ROWS, cpu_merge=True)
    assert profile.inbound["batch"] == ROWS * SIDE * SIDE * CHANNELS * FLOAT
    assert profile.inbound["weights"] == profile.outbound["gradients"] == weights
    # Softmax outputs are merged with their logits: both go out, both gradients come back.
    assert profile.outbound["activations"] == 2 * ROWS * CLASSES * FLOAT
    assert profile.inbound["activations"] == 2 * ROWS * CLASSES * FLOAT


def test_every_replica_of_a_wider_step_moves_what_the_two_device_profile_says():
    model = mlp()
    profile = trace.trace_split(model, ROWS, cpu_merge=True)
    step = traced_step(nbreplica.replicate(model, gpus=4).train_step, model, 4 * ROWS)
    found = traffic.transfers(step.graph)
    for replica in ("gpu1", "gpu2", "gpu3"):
        inbound = traffic.totals(t for t in found if t.destination == replica)
        assert {kind: size for (_, _, kind), size in inbound.items()} == {
            k: v for k, v in profile.inbound.items() if v}


@pytest.fixture
def plain_graphs():
    """Grappler off, so the partitioned graphs hold the traced graph's ops."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})


@pytest.mark.parametrize("make", [mlp, convnet])
@pytest.mark.parametrize("cpu_merge", [True, False])
def test_split_counts_match_what_tensorflow_sends(plain_graphs, make, cpu_merge):
    model = make()
    step = traced_step(nbreplica.replicate(model, gpus=3, cpu_merge=cpu_merge).train_step,
                       model, 3 * ROWS)
    assert counted(step) == sent_by_tensorflow(step, model, 3 * ROWS)


def test_an_embeddings_gradient_is_the_rows_it_gathered():
    profile = trace.trace_split(embedding_model(), ROWS, cpu_merge=True)
    assert profile.sparse_gradient_bytes == GATHERED_ROWS
    assert profile.gradient_bytes == EMBEDDING_HEAD
    assert profile.parameter_bytes == VOCABULARY * WIDTH * FLOAT + EMBEDDING_HEAD


def test_a_table_also_read_whole_has_a_dense_gradient():
    profile = trace.trace_split(embedding_model(tied=True), ROWS, cpu_merge=True)
    assert profile.sparse_gradient_bytes == 0
    assert profile.gradient_bytes == profile.parameter_bytes


# TensorFlow versions differ on where the constant shape of an embedding's sparse
# gradient (int32 x 2) runs, so the count may miss or add it on a pair of devices.
SPARSE_SHAPE = 2 * INT32


@pytest.mark.parametrize("make, batch, slack", [
    (lambda: mlp("sgd"), ROWS * (D0 + D2) * FLOAT, 0),
    (embedding_model, ROWS * (TOKENS * INT32 + OUTPUTS * FLOAT), SPARSE_SHAPE),
], ids=["mlp", "embedding"])
def test_mirrored_counts_match_what_tensorflow_sends(plain_graphs, make, batch, slack):
    profile = trace.trace_split(make(), ROWS, cpu_merge=True)
    devices = nbreplica.list_devices()[:2]
    strategy = mirrored_strategy(devices)
    with strategy.scope():
        model = make()
        model.optimizer.build(model.trainable_variables)

    def step(data):
        return strategy.run(model.train_step, args=(data,))

    function = traced_step(step, model, ROWS)
    sent, count = sent_by_tensorflow(function, model, ROWS), counted(function)
    assert all(abs(count[pair] - sent[pair]) <= slack for pair in {*count, *sent})
    # Each replica gets its rows and targets; its gradients (dense and sparse: what a
    # forecast reduces) go to the first device, and the sums come back.
    assert sent[("host", "gpu1")] == batch
    assert sent[("gpu1", "gpu0")] == profile.gradient_bytes + profile.sparse_gradient_bytes
    assert sent[("gpu0", "gpu1")] >= profile.gradient_bytes + 2 * profile.sparse_gradient_bytes


def test_emulated_devices_map_to_host_and_gpus():
    assert placement.locate("/job:localhost/replica:0/task:0/device:CPU:0") == "host"
    assert placement.locate("/device:CPU:3") == "gpu2"
    assert placement.locate("/device:GPU:1") == "gpu1"
    assert placement.locate("", default="gpu0") == "gpu0"


def test_variables_can_be_placed_where_a_gpu_machine_keeps_them():
    model = mlp()
    step = traced_step(nbreplica.replicate(model, gpus=2, cpu_merge=False).train_step,
                       model, 2 * ROWS)
    devices = placement.op_devices(step.graph, variable_device="gpu0")
    found = traffic.transfers(step.graph, devices)
    weights = traffic.totals(t for t in found if t.kind == "weights")
    assert weights == {("gpu0", "gpu1", "weights"): MLP_WEIGHTS}

"""Each replica's forward AND backward pass run on its own device: read from
TensorFlow's placement log of a real training step on 8 emulated devices, with Keras's
stock ``train_step``, with a template's own, and with a VAE-style step that calls the
template's encoder and decoder models instead of the template."""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import nbreplica

PROBE = Path(__file__).with_name("placement_probe.py")
PLACED = re.compile(r"placer\.cc.*\] (?P<node>\S+): \((?P<op>\w+)\): "
                    r"\S+/device:(?P<device>\w+:\d+)")
HEAVY_OPS = {"MatMul", "BiasAdd", "BiasAddGrad", "Relu", "ReluGrad"}


def placements(devices: int, *extra: str) -> dict[tuple[int, str], set[str]]:
    """(replica, 'forward'|'backward') -> devices its heavy ops ran on."""
    log = subprocess.run([sys.executable, str(PROBE), str(devices), *extra],
                         capture_output=True, text=True, timeout=300, check=True).stderr
    placed: dict[tuple[int, str], set[str]] = defaultdict(set)
    for match in PLACED.finditer(log):
        replica = re.search(r"replica_(\d+)/", match["node"])
        if replica and match["op"] in HEAVY_OPS:
            backward = "gradient_tape/" in match["node"] or "/gradients/" in match["node"]
            direction = "backward" if backward else "forward"
            placed[int(replica[1]), direction].add(match["device"])
    return placed


@pytest.fixture(scope="module", params=["stock", "custom", "submodels"])
def replicated_placement(request):
    return placements(8, request.param)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_every_replica_runs_on_its_own_device(replicated_placement, direction):
    for replica in range(8):
        assert replicated_placement[replica, direction] == {f"CPU:{replica + 1}"}, (
            f"{direction} pass of replica {replica}: {replicated_placement[replica, direction]}")


def test_the_probe_detects_a_backward_pass_collapsed_onto_one_device():
    naive = placements(8, "naive")
    assert all(naive[r, "forward"] == {f"CPU:{r + 1}"} for r in range(8))
    backward = set().union(*(naive[r, "backward"] for r in range(8)))
    assert len(backward) == 1, f"expected exactly one device for the naive backward, got {backward}"


@pytest.mark.parametrize("cpu_merge, merge_device", [(True, "CPU:0"), (False, "CPU:1")])
def test_outputs_merge_on_the_cpu_or_the_first_device(cpu_merge, merge_device):
    x_in = keras.Input((4,))
    parallel = nbreplica.replicate(keras.Model(x_in, keras.layers.Dense(2)(x_in)), gpus=3,
                                   cpu_merge=cpu_merge)
    graph = tf.function(parallel.call).get_concrete_function(
        tf.TensorSpec((None, 4), tf.float32)).graph
    concat_devices = {op.device.split("device:")[-1] for op in graph.get_operations()
                      if op.type == "ConcatV2" and "merge/" in op.name}
    assert concat_devices == {merge_device}

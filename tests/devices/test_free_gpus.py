"""free_gpus(): which devices count as free."""

import pytest

import nbreplica
from nbreplica.devices import DeviceStats
from nbreplica.testing import GIB, FakeGpu, fake_nvml, plausible_gpus


def device(index, free_gib=None, utilization=None, lost=False):
    free = None if free_gib is None else free_gib * GIB
    return DeviceStats(index, f"GPU {index}", memory_free=free, utilization_gpu=utilization,
                       lost=lost)


def test_memory_and_utilization_thresholds_are_inclusive():
    devices = [device(0, 8, 10), device(1, 7.9, 0), device(2, 40, 11), device(3, 8, 10)]
    assert nbreplica.free_gpus(min_free_gib=8, max_utilization=10, devices=devices) == [0, 3]


def test_unknown_metrics_do_not_exclude_but_lost_gpus_are_never_free():
    devices = [device(0), device(1, None, 3), device(2, 20, None), device(3, 20, 0, lost=True)]
    assert nbreplica.free_gpus(devices=devices) == [0, 1, 2]


def test_reads_a_fresh_snapshot_by_default():
    with fake_nvml(*plausible_gpus(8)):
        assert nbreplica.free_gpus() == [0, 2, 3, 5, 6]
    with fake_nvml(FakeGpu(memory_total=10 * GIB, memory_used=9.5 * GIB), FakeGpu()):
        assert nbreplica.free_gpus(min_free_gib=1) == [1]
        assert nbreplica.free_gpus(min_free_gib=0.25) == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_free_gib": -1}, "min_free_gib must be a number >= 0. Received: min_free_gib=-1"),
        ({"min_free_gib": "2"}, "Received: min_free_gib='2'"),
        ({"max_utilization": 101}, "between 0 and 100. Received: max_utilization=101"),
        ({"max_utilization": True}, "Received: max_utilization=True"),
    ],
)
def test_bad_thresholds_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        nbreplica.free_gpus(devices=[], **kwargs)

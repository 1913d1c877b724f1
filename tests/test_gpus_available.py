"""Emulated GPUs and the device list (this process runs with 8, see conftest.py)."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from fake_tf_config import FakeTfConfig

import nbreplica
from nbreplica.gpus import emulation


def test_list_devices_labels_emulated_gpus():
    devices = nbreplica.list_devices()
    assert [d.index for d in devices] == list(range(8))
    assert all(d.emulated and "Emulated" in d.name for d in devices)
    assert [d.device for d in devices] == [f"/device:CPU:{i}" for i in range(1, 9)]


def test_emulating_the_same_count_again_is_a_no_op():
    assert nbreplica.emulate_gpus(8) == nbreplica.list_devices()


def test_changing_emulation_after_start_up_says_what_to_do():
    import tensorflow as tf

    tf.constant(1.0).numpy()  # starts TensorFlow's runtime
    with pytest.raises(nbreplica.DeviceConfigurationError,
                       match=r"already initialized.*restart the kernel.*Received: n=4"):
        nbreplica.emulate_gpus(4)
    assert len(nbreplica.list_devices()) == 8


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "x", None])
def test_bad_emulation_counts(value):
    with pytest.raises(ValueError, match=r"whole number of devices >= 1.*Received: n="):
        nbreplica.emulate_gpus(value)


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(emulation.EMULATE_ENV_VAR, "eight")
    with pytest.raises(ValueError, match=r"NBREPLICA_EMULATE_GPUS=.eight."):
        emulation.requested_from_env()


def test_without_emulation_a_cpu_machine_has_no_accelerators():
    code = "import nbreplica; print(len(nbreplica.list_devices()))"
    env = {k: v for k, v in __import__("os").environ.items() if k != emulation.EMULATE_ENV_VAR}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.strip() == "0"


def test_use_devices_validates_indices():
    with pytest.raises(ValueError, match=r"non-negative integers.*Received: indices=\[0, -1\]"):
        nbreplica.use_devices([0, -1])
    with pytest.raises(ValueError, match=r"unique"):
        nbreplica.use_devices([1, 1])
    with pytest.raises(ValueError, match=r"non-negative integers.*Received: indices=\[True\]"):
        nbreplica.use_devices([True])
    assert nbreplica.selected_devices() is None
    try:
        nbreplica.use_devices(np.array([2, 0]))  # NumPy integers come back as ints
        assert nbreplica.selected_devices() == (0, 2)
        assert all(type(index) is int for index in nbreplica.selected_devices())
    finally:
        nbreplica.use_devices(None)


@pytest.fixture
def two_real_gpus(monkeypatch):
    """TensorFlow as it answers on a machine with two NVIDIA GPUs and no emulation."""
    monkeypatch.setattr(emulation, "_emulated_count", 0)
    monkeypatch.setattr(nbreplica.gpus.available, "tf",
                        SimpleNamespace(config=FakeTfConfig(2, "NVIDIA A100-SXM4-40GB")))


def test_real_gpus_are_listed_with_their_names(two_real_gpus):
    assert nbreplica.list_devices() == [
        nbreplica.Accelerator(i, "NVIDIA A100-SXM4-40GB", f"/device:GPU:{i}", False)
        for i in range(2)
    ]


def test_emulation_is_refused_beside_real_gpus(two_real_gpus):
    with pytest.raises(nbreplica.DeviceConfigurationError, match=r"real GPUs.*Received: n=2"):
        nbreplica.emulate_gpus(2)


def test_gpus_are_numbered_in_pci_bus_order_like_nvml():
    assert __import__("os").environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_pick_devices_names_what_is_missing(monkeypatch):
    assert [a.index for a in nbreplica.gpus.available.pick_devices([3, 1], "x")] == [3, 1]
    assert len(nbreplica.gpus.available.pick_devices(None, "x")) == 8
    with pytest.raises(ValueError, match=r"GPUs 0-7; there is no GPU 8, 9\. Received: --gpus 8,9"):
        nbreplica.gpus.available.pick_devices([8, 9], "--gpus 8,9")
    monkeypatch.setattr(nbreplica.gpus.available, "list_devices", lambda: [])
    with pytest.raises(ValueError, match=r"no GPU and none are emulated.*NBREPLICA_EMULATE_GPUS"):
        nbreplica.gpus.available.pick_devices(None, "x")

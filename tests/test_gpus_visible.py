"""The selection limits what TensorFlow takes: visibility and memory growth, against a
stand-in for ``tf.config`` (a machine with 8 NVIDIA GPUs)."""

from types import SimpleNamespace

import keras
import pytest
from fake_tf_config import FakeTfConfig

import nbreplica
from nbreplica import _tensorflow
from nbreplica.gpus import chosen, emulation, visible
from nbreplica.gpus.replicas import resolve_gpus


@pytest.fixture
def config(monkeypatch):
    """The fake ``tf.config`` as the one of this process's TensorFlow, and no selection."""
    fake = FakeTfConfig(8)
    monkeypatch.setattr(visible, "loaded_config", lambda: fake)
    monkeypatch.delenv(visible.ALLOCATOR_ENV_VAR, raising=False)
    nbreplica.use_devices(None)
    yield fake
    chosen.select(None)


@pytest.fixture
def tensorflow_sees(monkeypatch, config):
    """``nbreplica.gpus.available`` answering from the fake, with no emulated GPUs."""
    monkeypatch.setattr(emulation, "_emulated_count", 0)
    monkeypatch.setattr(nbreplica.gpus.available, "tf", SimpleNamespace(config=config))
    return config


def test_a_selection_before_start_is_all_tensorflow_sees_with_memory_growth(config):
    nbreplica.use_devices([5, 2])
    assert config.visible_names() == ["/physical_device:GPU:2", "/physical_device:GPU:5"]
    assert config.growth == {config.gpus[2]: True, config.gpus[5]: True}
    assert len(config.list_logical_devices("GPU")) == 2  # it starts with those two
    assert visible.visible_gpus(config) == [2, 5]  # /GPU:0 is GPU 2, /GPU:1 is GPU 5


def test_changing_the_selection_before_start_changes_what_tensorflow_sees(config):
    nbreplica.use_devices([1, 2, 3])
    nbreplica.use_devices([3])
    assert config.visible_names() == ["/physical_device:GPU:3"]
    nbreplica.use_devices(None)  # every GPU again, all with the same memory growth
    assert config.visible == config.gpus
    assert len(config.list_logical_devices("GPU")) == 8


def test_the_default_allocator_keeps_tensorflows_own_memory_handling(config, monkeypatch):
    monkeypatch.setenv(visible.ALLOCATOR_ENV_VAR, "default")
    nbreplica.use_devices([0, 1])
    assert config.visible_names() == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert config.growth == {}


def test_a_bad_allocator_names_the_variable(config, monkeypatch):
    monkeypatch.setenv(visible.ALLOCATOR_ENV_VAR, "lazy")
    with pytest.raises(ValueError, match=r"'growth'.*'default'.*Received: "
                                         r"NBREPLICA_TF_ALLOCATOR='lazy'"):
        nbreplica.use_devices([0])
    assert nbreplica.selected_devices() is None and config.visible == config.gpus


def test_after_start_use_devices_says_which_gpus_the_kernel_holds(config):
    config.list_logical_devices("GPU")  # the runtime starts with every GPU
    with pytest.warns(UserWarning) as warned:
        nbreplica.use_devices([2, 3])
    (note,) = [str(w.message) for w in warned]
    assert "TensorFlow has already started in this kernel and holds GPUs 0-7" in note
    assert "restart the kernel and select GPUs" in note and "before TensorFlow starts" in note
    assert nbreplica.selected_devices() == (2, 3) and chosen.visibility_note() == note
    assert config.visible == config.gpus


def test_after_start_a_selection_of_what_tensorflow_holds_needs_no_note(config, recwarn):
    nbreplica.use_devices([2, 3])
    config.list_logical_devices("GPU")
    nbreplica.use_devices([3, 2])  # the same GPUs: no change at all
    nbreplica.use_devices(None)  # "every device" is what it sees
    nbreplica.use_devices([2, 3])
    assert [str(w.message) for w in recwarn] == [] and chosen.visibility_note() is None


def test_after_start_a_gpu_tensorflow_cannot_see_is_named(config):
    nbreplica.use_devices([2, 3])
    config.list_logical_devices("GPU")
    with pytest.warns(UserWarning, match=r"cannot see GPU 5 \(it sees GPUs 2, 3\), so "
                                         r"replicate\(\) refuses it\..*restart the kernel"):
        nbreplica.use_devices([2, 5])


def test_without_physical_gpus_nothing_is_changed(monkeypatch, recwarn):
    empty = FakeTfConfig(0)
    monkeypatch.setattr(visible, "loaded_config", lambda: empty)
    assert chosen.select([0, 1]) is None
    chosen.select(None)
    assert visible.limit(empty, [0]) is None and recwarn.list == []


def test_indices_the_machine_lacks_are_left_out(config):
    nbreplica.use_devices([6, 7, 9])
    assert config.visible_names() == ["/physical_device:GPU:6", "/physical_device:GPU:7"]


def test_a_selection_made_before_tensorflow_was_imported_limits_it_at_load(monkeypatch):
    fake = FakeTfConfig(4)
    monkeypatch.setattr(visible, "loaded_config", lambda: None)  # not imported yet
    nbreplica.use_devices([1, 3])
    assert fake.visible == fake.gpus
    monkeypatch.setattr(_tensorflow, "_start", lambda: SimpleNamespace(config=fake))
    try:
        _tensorflow.load()
    finally:
        nbreplica.use_devices(None)
    assert fake.visible_names() == ["/physical_device:GPU:1", "/physical_device:GPU:3"]
    assert set(fake.growth) == {fake.gpus[1], fake.gpus[3]}


def test_accelerators_keep_nvml_indices_and_name_tensorflows_devices(tensorflow_sees):
    nbreplica.use_devices([2, 3])
    assert [(a.index, a.device) for a in nbreplica.list_devices()] == [
        (2, "/device:GPU:0"), (3, "/device:GPU:1")]
    assert [a.index for a in resolve_gpus(None)] == [2, 3]
    assert [a.device for a in resolve_gpus([3, 2])] == ["/device:GPU:1", "/device:GPU:0"]


def test_replicate_refuses_a_gpu_tensorflow_cannot_see(tensorflow_sees):
    nbreplica.use_devices([2, 3])
    nbreplica.list_devices()  # TensorFlow starts with GPUs 2 and 3
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"cannot see GPUs 0, 1: when it started it was "
                                         r"given GPUs 2, 3.*restart the kernel.*"
                                         r"Received: gpus=\[0, 1\]$"):
        nbreplica.replicate(model, gpus=[0, 1])
    with pytest.raises(ValueError, match=r"cannot see GPU 4.*Received: --gpus 2,4"):
        nbreplica.gpus.available.pick_devices([2, 4], "--gpus 2,4")
    with pytest.raises(ValueError, match=r"This machine has GPUs 2, 3; there is no GPU 8"):
        nbreplica.gpus.available.pick_devices([8], "--gpus 8")


@pytest.mark.parametrize("indices, shown", [
    ([2], "GPU 2"), ([0, 1], "GPUs 0, 1"), ([0, 1, 2, 3], "GPUs 0-3"), ([1, 4, 5], "GPUs 1, 4, 5"),
])
def test_gpu_lists_in_messages(indices, shown):
    assert visible.gpu_list(indices) == shown

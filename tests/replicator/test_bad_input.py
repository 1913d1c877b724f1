"""Bad input gets a clear error saying what was received and what is expected."""

import keras
import numpy as np
import pytest

import nbreplica
from replica_models import make_mlp


@pytest.mark.parametrize(
    "gpus, error, message",
    [
        (1, ValueError, r"gpus >= 2.*Received: gpus=1"),
        ([3], ValueError, r"gpus >= 2"),
        (9, ValueError,
         r"expect the following devices.*GPU 8.*only has.*Emulated GPU 7.*Try reducing `gpus`"),
        ([0, 8], ValueError, r"GPU 8"),
        ([1, 1], ValueError, r"unique.*Received: gpus=\[1, 1\]"),
        ([0, -1], ValueError, r"negative.*Received: gpus=\[0, -1\]"),
        ([0, 1.5], TypeError, r"integer GPU ids.*Received: gpus=\[0, 1.5\]"),
        (True, TypeError, r"Received: gpus=True"),
        ([True, False], TypeError, r"integer GPU ids"),
        ("0,1", TypeError, r"Received: gpus='0,1' of type str"),
    ],
)
def test_bad_gpus(gpus, error, message):
    with pytest.raises(error, match=message):
        nbreplica.replicate(make_mlp(), gpus=gpus)


def test_a_single_selected_device_is_not_enough():
    nbreplica.use_devices([2])
    try:
        with pytest.raises(ValueError, match=r"select at least two devices.*devices \[2\]"):
            nbreplica.replicate(make_mlp())
    finally:
        nbreplica.use_devices(None)


def test_not_a_keras_model():
    with pytest.raises(TypeError, match=r"expects a Keras model.*of type Dense"):
        nbreplica.replicate(keras.layers.Dense(3), gpus=2)


def test_an_unbuilt_model_that_cannot_be_built():
    with pytest.raises(ValueError,
                       match=r"needs a built model.*Received: model='unbuilt' \(built=False\)"):
        nbreplica.replicate(keras.Sequential([keras.layers.Dense(2)], name="unbuilt"), gpus=2)


class _FailsOnBigValues(keras.Model):
    def call(self, inputs):
        if np.any(inputs.numpy() > 100):
            raise ValueError("value out of range")
        return inputs


def test_a_failure_inside_a_replica_names_the_replica_and_its_device():
    template = _FailsOnBigValues()
    template(np.zeros((1, 2), "float32"))
    parallel = nbreplica.replicate(template, gpus=4)
    x = np.zeros((8, 2), "float32")
    x[5] = 1000.0  # rows 4-5 go to replica 2
    with pytest.raises(nbreplica.ReplicaError,
                       match=r"(?s)Caught ValueError in replica 2 on device /device:CPU:3"
                             r".*out of range"):
        parallel(x)


def test_loading_on_too_few_devices_names_the_load():
    config = nbreplica.replicate(make_mlp(), gpus=2).get_config()
    config["gpus"] = [0, 8]
    with pytest.raises(ValueError, match=r"To load a saved ReplicatedModel with `gpus=\[0, 8\]`"):
        nbreplica.ReplicatedModel.from_config(config)


def test_each_wrapper_of_one_template_gets_its_own_name():
    template = make_mlp()
    names = {nbreplica.replicate(template, gpus=2).name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("mlp_replicated") for n in names)

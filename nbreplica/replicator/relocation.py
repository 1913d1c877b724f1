"""Move a model's variables to another device without losing their values."""

from __future__ import annotations

import keras
import tensorflow as tf

from nbreplica._keras_compat import rebuild_variable


def move_variables(model: keras.Model, device: str) -> None:
    """Re-create each of ``model``'s variables on ``device``, keeping its value.

    The model keeps its variable objects (layers and anything holding them stay
    valid); only the TensorFlow storage behind each one moves. The model's cached
    train/test/predict functions are dropped, since a traced function keeps reading
    the storage it captured.
    """
    model.train_function = model.test_function = model.predict_function = None
    for variable in model.weights:
        if same_device(variable.value.device, device):
            continue
        with tf.device(device):
            rebuild_variable(variable, tf.identity(variable.value))


def same_device(a: str, b: str) -> bool:
    """Whether two TensorFlow device strings name the same device (type and index)."""
    spec_a, spec_b = tf.DeviceSpec.from_string(a), tf.DeviceSpec.from_string(b)
    return (spec_a.device_type, spec_a.device_index or 0) == (
        spec_b.device_type, spec_b.device_index or 0)

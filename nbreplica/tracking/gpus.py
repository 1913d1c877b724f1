"""Which GPUs a model trains on, by NVML index, and which worker this process is.

A :class:`~nbreplica.ReplicatedModel` trains on its replicas' devices; a model built
under a ``tf.distribute`` strategy on the strategy's devices in this process; any other
model on TensorFlow's first GPU (on the host CPU, so no GPU, where GPUs are emulated).
How TensorFlow's GPU numbers map to NVML's: :mod:`nbreplica.devices.cuda_visible`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nbreplica._errors import NbreplicaError
from nbreplica.cluster.current import context
from nbreplica.devices.cuda_visible import nvml_indices
from nbreplica.gpus.available import list_devices
from nbreplica.replicator.model import ReplicatedModel


def model_gpus(model: keras.Model) -> list[int]:
    """The NVML indices of the GPUs ``model`` trains on (see the module docstring), in
    order."""
    if isinstance(model, ReplicatedModel):
        return nvml_indices(model.accelerators)
    try:
        devices = list(model.distribute_strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no devices of its own
        devices = ["/device:GPU:0"] if tf.config.list_logical_devices("GPU") else []
    by_device = {_device_key(a.device): a for a in list_devices()}
    used = [by_device[key] for key in map(_device_key, devices) if key in by_device]
    return nvml_indices(used)


def worker_index() -> int | None:
    """This process's worker index under :mod:`nbreplica.cluster`; ``None`` outside."""
    try:
        return context().index
    except NbreplicaError:
        return None


def _device_key(device: str) -> tuple[str, int]:
    spec = tf.DeviceSpec.from_string(device)
    return spec.device_type or "", spec.device_index or 0

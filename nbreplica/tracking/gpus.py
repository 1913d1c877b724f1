"""Which GPUs a model trains on, by NVML index, and which worker this process is.

A :class:`~nbreplica.ReplicatedModel` trains on its replicas' devices; a model built
under a ``tf.distribute`` strategy on the strategy's devices in this process; any other
model on TensorFlow's first GPU (on the host CPU, so no GPU, where GPUs are emulated).

NVML numbers every GPU of the machine, whatever a process may see. TensorFlow numbers
the GPUs ``CUDA_VISIBLE_DEVICES`` lets it see (``CUDA_DEVICE_ORDER=PCI_BUS_ID``, set by
:mod:`nbreplica._startup`, keeps them in NVML's order), so its GPU ``i`` is NVML's GPU
named by the variable's ``i``-th entry, an index or a UUID (Ray and cluster managers
set it per worker). Emulated GPUs stand for the simulated NVML GPUs of the same index.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from nbreplica._errors import NbreplicaError
from nbreplica.cluster.current import context
from nbreplica.devices import nvml
from nbreplica.gpus.available import Accelerator, list_devices
from nbreplica.replicator.model import ReplicatedModel

VISIBLE_ENV_VAR = "CUDA_VISIBLE_DEVICES"


def model_gpus(model: keras.Model) -> list[int]:
    """The NVML indices of the GPUs ``model`` trains on (module docstring), in order."""
    if isinstance(model, ReplicatedModel):
        return nvml_indices(model.accelerators)
    try:
        devices = list(model.distribute_strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no devices of its own
        devices = ["/device:GPU:0"] if tf.config.list_logical_devices("GPU") else []
    by_device = {_device_key(a.device): a for a in list_devices()}
    used = [by_device[key] for key in map(_device_key, devices) if key in by_device]
    return nvml_indices(used)


def nvml_indices(accelerators: Sequence[Accelerator]) -> list[int]:
    """The NVML index of each of ``accelerators`` (those NVML cannot name left out)."""
    indices = [a.index if a.emulated else nvml_index(a.index) for a in accelerators]
    return [index for index in indices if index is not None]


def nvml_index(physical: int, environ: os._Environ[str] | dict[str, str] = os.environ,
               ) -> int | None:
    """NVML's index of TensorFlow's physical GPU ``physical`` under ``environ``'s
    ``CUDA_VISIBLE_DEVICES``; ``None`` when the variable names no such GPU."""
    value = environ.get(VISIBLE_ENV_VAR)
    if value is None:
        return physical
    entries = [entry.strip() for entry in value.split(",")]
    if physical >= len(entries) or not entries[physical]:
        return None
    entry = entries[physical]
    if entry.isdigit():
        return int(entry)
    # A UUID, or the start of one (CUDA accepts any unique prefix).
    matches = [device.index for device in nvml.read_devices()
               if device.uuid is not None and device.uuid.startswith(entry)]
    return matches[0] if len(matches) == 1 else None


def worker_index() -> int | None:
    """This process's worker index under :mod:`nbreplica.cluster`; ``None`` outside."""
    try:
        return context().index
    except NbreplicaError:
        return None


def _device_key(device: str) -> tuple[str, int]:
    spec = tf.DeviceSpec.from_string(device)
    return spec.device_type or "", spec.device_index or 0

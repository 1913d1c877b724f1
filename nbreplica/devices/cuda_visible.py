"""NVML's number of each GPU a process trains on, under ``CUDA_VISIBLE_DEVICES``.

NVML numbers every GPU of the machine, whatever a process may see. TensorFlow numbers
the GPUs ``CUDA_VISIBLE_DEVICES`` lets it see (``CUDA_DEVICE_ORDER=PCI_BUS_ID``, set by
:mod:`nbreplica._startup`, keeps them in NVML's order), so its GPU ``i`` is NVML's GPU
named by the variable's ``i``-th entry, an index or a UUID (Ray and cluster managers
set it per worker). Emulated GPUs stand for the simulated NVML GPUs of the same index.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from nbreplica.devices import nvml

VISIBLE_ENV_VAR = "CUDA_VISIBLE_DEVICES"


class Accelerator(Protocol):
    """What is read of a :class:`nbreplica.gpus.available.Accelerator`: TensorFlow's
    physical GPU index (an emulated GPU's own), and whether it is emulated."""

    index: int
    emulated: bool


def nvml_index_of(accelerator: Accelerator) -> int | None:
    """NVML's index of ``accelerator``; ``None`` when ``CUDA_VISIBLE_DEVICES`` names
    no such GPU."""
    return accelerator.index if accelerator.emulated else nvml_index(accelerator.index)


def nvml_indices(accelerators: Sequence[Accelerator]) -> list[int]:
    """The NVML index of each of ``accelerators`` (those NVML cannot name left out)."""
    indices = [nvml_index_of(accelerator) for accelerator in accelerators]
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

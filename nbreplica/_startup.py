"""What ``import nbreplica`` sets up from the environment (TensorFlow only on demand).

- ``CUDA_DEVICE_ORDER`` defaults to ``PCI_BUS_ID``: CUDA numbers GPUs fastest-first
  unless told otherwise, NVML by PCI bus; this makes GPU ``i`` in the picker and in
  ``snapshot()`` the same card as TensorFlow's physical GPU ``i`` (which TensorFlow
  renumbers when only some GPUs are visible: see :mod:`nbreplica.gpus.visible`).
- ``NBREPLICA_FAKE_NVML=N`` puts the simulated driver of :mod:`nbreplica.testing`
  with N GPUs under pynvml (a notebook kernel is a separate process: this is how a
  test or a demo gives it GPUs to show); ``NBREPLICA_FAKE_NVML=mixed`` gives it a
  machine of 2 A100s and 2 T4s with different free memory.
- ``NBREPLICA_EMULATE_GPUS=N`` makes N emulated GPUs, which starts TensorFlow.
- Keras finds nbreplica's saved classes (see :mod:`nbreplica._keras_registry`).

A variable that holds something other than a device count is reported with a warning
that names it, and ignored: ``import nbreplica`` does not fail over one.
"""

from __future__ import annotations

import os
import warnings

from nbreplica import _keras_registry
from nbreplica.gpus import emulation

FAKE_NVML_ENV_VAR = "NBREPLICA_FAKE_NVML"


def configure() -> None:
    """Apply every setting above."""
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    _keras_registry.install()
    for apply in (install_fake_nvml_from_env, emulate_from_env):
        try:
            apply()
        except ValueError as error:
            warnings.warn(f"nbreplica ignores a variable of its environment: {error}",
                          UserWarning, stacklevel=2)


def emulate_from_env() -> None:
    """Make the emulated GPUs ``NBREPLICA_EMULATE_GPUS`` asks for (starts TensorFlow).

    Raises:
        ValueError: the variable holds something other than a device count.
    """
    count = emulation.requested_from_env()
    if count:
        from nbreplica.gpus.available import emulate_gpus

        emulate_gpus(count)


def install_fake_nvml_from_env() -> None:
    """Install the simulated NVML driver when ``NBREPLICA_FAKE_NVML`` asks for one.

    Raises:
        ValueError: the variable holds something other than a device count.
    """
    raw = os.environ.get(FAKE_NVML_ENV_VAR, "").strip()
    if not raw:
        return
    from nbreplica.testing.plausible import MIXED, plausible_driver  # only when asked for

    machine = MIXED if raw == MIXED else emulation.parse_count(raw, name=FAKE_NVML_ENV_VAR)
    plausible_driver(machine).install()

"""What ``import nbreplica`` sets up from the environment (TensorFlow only on demand).

- ``CUDA_DEVICE_ORDER`` defaults to ``PCI_BUS_ID``: CUDA numbers GPUs fastest-first
  unless told otherwise, NVML by PCI bus; this makes GPU ``i`` in the picker and in
  ``snapshot()`` the same card as TensorFlow's physical GPU ``i`` (which TensorFlow
  renumbers when only some GPUs are visible: see :mod:`nbreplica._visibility`).
- ``NBREPLICA_FAKE_NVML=N`` puts the simulated driver of :mod:`nbreplica.testing`
  with N GPUs under pynvml (a notebook kernel is a separate process: this is how a
  test or a demo gives it GPUs to show).
- ``NBREPLICA_EMULATE_GPUS=N`` makes N emulated GPUs, which starts TensorFlow.
"""

from __future__ import annotations

import os

from nbreplica import _emulation

FAKE_NVML_ENV_VAR = "NBREPLICA_FAKE_NVML"


def configure() -> None:
    """Apply every setting above.

    Raises:
        ValueError: a variable holds something other than a device count.
    """
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    install_fake_nvml_from_env()
    count = _emulation.requested_from_env()
    if count:
        from nbreplica.accelerators import emulate_gpus  # starts TensorFlow

        emulate_gpus(count)


def install_fake_nvml_from_env() -> None:
    """Install the simulated NVML driver when ``NBREPLICA_FAKE_NVML`` asks for one."""
    raw = os.environ.get(FAKE_NVML_ENV_VAR, "").strip()
    if not raw:
        return
    count = _emulation.parse_count(raw, name=FAKE_NVML_ENV_VAR)
    from nbreplica.testing.plausible import plausible_driver  # only when asked for

    plausible_driver(count).install()

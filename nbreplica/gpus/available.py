"""Which GPUs exist: the accelerators TensorFlow can place work on, real or emulated.

Real GPUs keep NVML's index (``Accelerator.index``) whatever TensorFlow calls them:
with only GPUs 2 and 3 visible to TensorFlow (the selection made before it started,
see :mod:`nbreplica.gpus.visible`), GPU 2 is ``/device:GPU:0``.

Emulation splits the one physical CPU into ``n + 1`` TensorFlow logical devices:
``/device:CPU:0`` stays the host (where ``cpu_merge`` and ``cpu_relocation`` put work)
and ``/device:CPU:1`` ... ``/device:CPU:n`` stand in for GPUs 0 ... n-1, so placement
on the host and on each "GPU" stays distinguishable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nbreplica import _tensorflow
from nbreplica.gpus import emulation, visible
from nbreplica._errors import DeviceConfigurationError

tf = _tensorflow.load()

HOST_DEVICE = "/device:CPU:0"


@dataclass(frozen=True)
class Accelerator:
    """One device ``replicate`` can use: its GPU index (for a real GPU TensorFlow's
    physical one, which is NVML's unless ``CUDA_VISIBLE_DEVICES`` hides GPUs: see
    :mod:`nbreplica.devices.cuda_visible`), a readable name, its TensorFlow device
    string, and whether it is an emulated stand-in."""

    index: int
    name: str
    device: str
    emulated: bool


def emulate_gpus(n: int) -> list[Accelerator]:
    """Make ``n`` TensorFlow logical CPU devices stand in for GPUs.

    Must run before TensorFlow starts its runtime (before the first op or device
    query); ``NBREPLICA_EMULATE_GPUS=n`` does the same when nbreplica is imported.
    Calling it again with the same ``n`` is a no-op.

    Raises:
        ValueError: ``n`` is not a whole number >= 1.
        DeviceConfigurationError: the machine has real GPUs, or TensorFlow already
            initialized its devices with a different layout.
    """
    count = emulation.parse_count(n, name="n")
    if count == emulation.emulated_count():
        return list_devices()
    if tf.config.list_physical_devices("GPU"):
        raise DeviceConfigurationError(
            "This machine has real GPUs; emulated GPUs are for machines without them. "
            f"Use replicate(model, gpus=...) with the real devices. Received: n={n!r}"
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count + 1)]
        )
    except RuntimeError as exc:
        raise DeviceConfigurationError(
            "TensorFlow has already initialized its devices, so emulated GPUs can no "
            "longer be added. Call nbreplica.emulate_gpus(n) or set "
            f"{emulation.EMULATE_ENV_VAR}=n before TensorFlow runs its first "
            f"operation (in a notebook: restart the kernel). Received: n={n!r}"
        ) from exc
    emulation.record(count)
    return list_devices()


def list_devices() -> list[Accelerator]:
    """The accelerators ``replicate`` would use, in index order.

    Emulated GPUs when emulation is on, else the GPUs TensorFlow can see (empty on a
    machine without any), with their NVML indices.
    """
    emulated = emulation.emulated_count()
    if emulated:
        return [
            Accelerator(i, emulation.emulated_name(i), f"/device:CPU:{i + 1}", True)
            for i in range(emulated)
        ]
    seen = visible.visible_gpus(tf.config)
    return [
        Accelerator(index, _gpu_name(index), f"/device:GPU:{number}", False)
        for number, index in enumerate(seen[: len(tf.config.list_logical_devices("GPU"))])
    ]


def pick_devices(indices: Sequence[int] | None, received: str) -> list[Accelerator]:
    """The accelerators at ``indices`` (every one when ``None``).

    Raises:
        ValueError: there are no accelerators at all, or an index names one the
            machine lacks or TensorFlow cannot see; the message ends with
            ``Received: {received}``.
    """
    available = list_devices()
    if not available:
        raise ValueError(
            "There are no devices to run on: this machine has no GPU and none are "
            "emulated. Call nbreplica.emulate_gpus(n) before TensorFlow starts (or set "
            f"{emulation.EMULATE_ENV_VAR}=n). Received: list_devices()=[]"
        )
    if indices is None:
        return available
    found, missing = locate(indices, available, received)
    if missing:
        raise ValueError(
            f"This machine has {visible.gpu_list([a.index for a in available])}; "
            f"there is no GPU {', '.join(map(str, missing))}. Received: {received}"
        )
    return found


def locate(indices: Sequence[int], available: Sequence[Accelerator],
           received: str) -> tuple[list[Accelerator], list[int]]:
    """The accelerators among ``available`` at ``indices`` (in that order), and the
    indices at which there is none.

    Raises:
        ValueError: an index names a GPU the machine has but TensorFlow cannot see (it
            was limited to the selection made before it started); the message says
            how to use it and ends with ``Received: {received}``.
    """
    by_index = {accelerator.index: accelerator for accelerator in available}
    missing = [index for index in indices if index not in by_index]
    if missing:
        visible.refuse_hidden(tf.config, missing, received)
    return [by_index[index] for index in indices if index in by_index], missing


def _gpu_name(index: int) -> str:
    physical = tf.config.list_physical_devices("GPU")
    if index < len(physical):
        details = tf.config.experimental.get_device_details(physical[index])
        if details.get("device_name"):
            return str(details["device_name"])
    return f"GPU {index}"

"""Which physical GPUs TensorFlow may use: the selection, applied before its runtime starts.

When TensorFlow's runtime starts it maps nearly all the memory of every GPU it can see.
So while it has not started, :func:`limit` makes only the selected GPUs visible to it
(``tf.config.set_visible_devices``) and turns on memory growth for them, so that the
kernel takes memory as it needs it; ``NBREPLICA_TF_ALLOCATOR=default`` keeps
TensorFlow's own allocation (all memory of each visible GPU). Once the runtime has
started these settings are fixed: :func:`limit` then says which GPUs the kernel holds.

GPU numbers are NVML's everywhere. With ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (set by
:mod:`nbreplica._startup`) TensorFlow's physical GPU ``i`` is NVML's GPU ``i``;
TensorFlow numbers the visible ones from 0 in that order, so with GPUs 2 and 3 visible,
GPU 2 is TensorFlow's ``/device:GPU:0`` (:func:`visible_gpus` is that mapping).

Every function takes ``config``: ``tf.config``, or a stand-in offering its
``list_physical_devices``, ``get_visible_devices``, ``set_visible_devices`` and
``experimental.set_memory_growth``. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

ALLOCATOR_ENV_VAR = "NBREPLICA_TF_ALLOCATOR"
_ALLOCATORS = ("growth", "default")


def loaded_config() -> Any | None:
    """``tf.config`` when TensorFlow is imported in this process, else ``None``."""
    tensorflow = sys.modules.get("tensorflow")
    return getattr(tensorflow, "config", None)


def memory_growth() -> bool:
    """Whether :func:`limit` turns on memory growth (``NBREPLICA_TF_ALLOCATOR``:
    ``growth``, the default, or ``default`` for TensorFlow's own allocation).

    Raises:
        ValueError: the variable holds another value.
    """
    allocator = os.environ.get(ALLOCATOR_ENV_VAR, "").strip().lower() or "growth"
    if allocator not in _ALLOCATORS:
        raise ValueError(
            f"{ALLOCATOR_ENV_VAR} must be 'growth' (TensorFlow takes GPU memory as it "
            "needs it) or 'default' (it maps all memory of each visible GPU). "
            f"Received: {ALLOCATOR_ENV_VAR}={os.environ[ALLOCATOR_ENV_VAR]!r}"
        )
    return allocator == "growth"


def visible_gpus(config: Any) -> list[int]:
    """The NVML indices of the GPUs TensorFlow may use, in TensorFlow's order:
    its ``/device:GPU:j`` is NVML's GPU ``visible_gpus(config)[j]``."""
    visible = config.get_visible_devices("GPU")
    return [index for index, device in enumerate(config.list_physical_devices("GPU"))
            if device in visible]


def limit(config: Any, indices: Sequence[int] | None) -> str | None:
    """Make only the GPUs ``indices`` (``None``: every GPU) visible to TensorFlow, with
    memory growth on for each of them (unless ``NBREPLICA_TF_ALLOCATOR=default``;
    TensorFlow refuses to start when visible GPUs differ in memory growth).

    Indices the machine lacks are left out (``replicate`` refuses them); a machine
    without physical GPUs (emulated ones, or none) is left as it is.

    Returns:
        ``None`` when TensorFlow now sees exactly these GPUs, or when ``indices`` is
        ``None``; otherwise, as its runtime has already started, a note saying which
        GPUs this kernel holds and how to release them.
    """
    physical = config.list_physical_devices("GPU")
    wanted = [i for i in (range(len(physical)) if indices is None else indices)
              if i < len(physical)]
    if not wanted:
        return None
    growth = memory_growth()
    try:
        config.set_visible_devices([physical[i] for i in wanted], "GPU")
        if growth:
            for index in wanted:
                config.experimental.set_memory_growth(physical[index], True)
    except RuntimeError:  # the runtime has started: these settings are fixed
        return None if indices is None else held_note(config, wanted)
    return None


def held_note(config: Any, wanted: Sequence[int]) -> str | None:
    """What a kernel whose TensorFlow runtime started needs to know when it wants the
    GPUs ``wanted``: which GPUs it holds, which it cannot use, and how to change that;
    ``None`` when it holds exactly those."""
    visible = visible_gpus(config)
    hidden = [index for index in wanted if index not in visible]
    notes = []
    if set(visible) - set(wanted):
        notes.append(
            f"TensorFlow has already started in this kernel and holds {gpu_list(visible)} "
            "(it maps the memory of every GPU it sees when it starts); the GPUs not "
            "selected stay held, unused, until the kernel restarts."
        )
    if hidden:
        notes.append(
            f"TensorFlow in this kernel cannot see {gpu_list(hidden)} (it sees "
            f"{gpu_list(visible) if visible else 'no GPU'}), so replicate() refuses "
            f"{'it' if len(hidden) == 1 else 'them'}."
        )
    if not notes:
        return None
    return " ".join(notes) + (
        " To change which GPUs this kernel holds, restart the kernel and select GPUs "
        "(nbreplica.use_devices or the GPU picker) before TensorFlow starts, i.e. before "
        "the first model is built."
    )


def refuse_hidden(config: Any, indices: Sequence[int], received: str) -> None:
    """Refuse the GPUs among ``indices`` that exist but that TensorFlow cannot see.

    Raises:
        ValueError: naming them, what TensorFlow sees, and how to change it; the
            message ends with ``Received: {received}``.
    """
    physical = len(config.list_physical_devices("GPU"))
    visible = visible_gpus(config)
    hidden = [index for index in indices if index < physical and index not in visible]
    if hidden:
        raise ValueError(
            f"TensorFlow in this kernel cannot see {gpu_list(hidden)}: when it started it "
            f"was given {gpu_list(visible) if visible else 'no GPU'} (the selection made "
            "before it started). To use other GPUs, restart the kernel and select them "
            "(nbreplica.use_devices or the GPU picker) before the first model is built. "
            f"Received: {received}"
        )


def gpu_list(indices: Sequence[int]) -> str:
    """``"GPU 2"``, ``"GPUs 0-7"`` or ``"GPUs 1, 4, 5"``: indices as messages show them."""
    if len(indices) == 1:
        return f"GPU {indices[0]}"
    if len(indices) > 2 and list(indices) == list(range(indices[0], indices[-1] + 1)):
        return f"GPUs {indices[0]}-{indices[-1]}"
    return "GPUs " + ", ".join(map(str, indices))

"""Where replicas go: the devices a replicated model, a sweep or a cell runs on.

:func:`resolve_gpus` turns the ``gpus`` argument of ``replicate`` into accelerators;
:func:`chosen_devices` is what sweeps and ``%%replicate`` cells run on unless told
otherwise. Both start from the selection (:mod:`nbreplica.gpus.chosen`) and check it
against what exists (:mod:`nbreplica.gpus.available`).
"""

from __future__ import annotations

from collections.abc import Sequence

from nbreplica._checks import is_whole
from nbreplica.gpus.available import Accelerator, list_devices, locate, pick_devices
from nbreplica.gpus.chosen import selected_devices


def resolve_gpus(gpus: int | Sequence[int] | None,
                 caller: str = "call `replicate`") -> list[Accelerator]:
    """The accelerators ``gpus`` names, validated against what the machine has.

    ``caller`` names what the user did, for the error messages.

    ``None``: the picker's selection (``use_devices``) if one is set, else every
    device; an int ``n >= 2``: devices 0..n-1; a list of >= 2 distinct ids: exactly
    those, in the given order. Ids are NVML's GPU indices (the emulated GPUs' own).

    Raises:
        TypeError, ValueError: ``gpus`` is malformed, asks for fewer than two devices,
            or names a device the machine lacks or TensorFlow cannot see.
    """
    available = list_devices()
    ids = _requested_ids(gpus, available)
    if len(ids) < 2:
        raise ValueError(
            f"For multi-gpu usage to be effective, {caller} with `gpus >= 2` "
            "(or a list of at least two GPU ids, or select at least two devices). "
            f"Received: gpus={gpus!r} (devices {list(ids)})"
        )
    found, missing = locate(ids, available, f"gpus={gpus!r}")
    if missing:
        expected = ", ".join(f"GPU {i}" for i in ids)
        have = ", ".join(f"GPU {a.index}: {a.name} ({a.device})" for a in available) or "no GPU"
        raise ValueError(
            f"To {caller} with `gpus={gpus!r}`, we expect the following devices "
            f"to be available: {expected}. However this machine only has: {have}. "
            "Try reducing `gpus`, or emulate GPUs with "
            "nbreplica.emulate_gpus(n) / NBREPLICA_EMULATE_GPUS=n. "
            f"Received: gpus={gpus!r}"
        )
    return found


def _requested_ids(gpus: object, available: list[Accelerator]) -> list[int]:
    if gpus is None:
        selected = selected_devices()
        return list(selected) if selected is not None else [a.index for a in available]
    if is_whole(gpus):
        return list(range(gpus))
    if isinstance(gpus, (list, tuple)):
        if not all(is_whole(i) for i in gpus):
            raise TypeError(
                f"`gpus` must hold integer GPU ids. Received: gpus={gpus!r}"
            )
        if any(i < 0 for i in gpus):
            raise ValueError(f"GPU ids cannot be negative. Received: gpus={gpus!r}")
        if len(set(gpus)) != len(gpus):
            raise ValueError(f"GPU ids must be unique. Received: gpus={gpus!r}")
        return list(gpus)
    raise TypeError(
        "`gpus` must be None, an integer >= 2 or a list of GPU ids. "
        f"Received: gpus={gpus!r} of type {type(gpus).__name__}"
    )


def chosen_devices(count: int | None = None, asked_by: str = "count") -> list[Accelerator]:
    """The devices chosen in the GPU picker (:func:`nbreplica.use_devices`), else every
    device: what a sweep or a ``%%replicate`` cell runs on unless told otherwise; the
    first ``count`` of them when ``count`` is given (``asked_by`` names it in errors,
    e.g. ``"-n"``).

    Raises:
        ValueError: as :func:`~nbreplica.gpus.available.pick_devices`, or there are
            fewer than ``count`` devices.
    """
    selection = selected_devices()
    pool = pick_devices(selection, f"nbreplica.selected_devices()={selection!r}")
    if count is not None and count > len(pool):
        source = "selected" if selection is not None else "available"
        raise ValueError(
            f"{asked_by} asks for {count} devices, but only {len(pool)} are {source}. "
            f"Received: {asked_by} {count}"
        )
    return pool if count is None else pool[:count]

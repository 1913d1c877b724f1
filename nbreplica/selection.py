"""The process-wide default device set, chosen with the GPU picker or ``use_devices``.

``replicate(model)`` with ``gpus=None`` and the ``%%replicate`` magic without ``--gpus``
use this selection when one is set, else every device.
"""

from __future__ import annotations

from collections.abc import Iterable

_selected: tuple[int, ...] | None = None


def use_devices(indices: Iterable[int] | None) -> None:
    """Make ``indices`` the default devices; ``None`` goes back to "all devices"."""
    global _selected
    if indices is None:
        _selected = None
        return
    chosen = list(indices)
    for index in chosen:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(
                "Device indices must be non-negative integers. "
                f"Received: indices={chosen!r}"
            )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Device indices must be unique. Received: indices={chosen!r}")
    _selected = tuple(sorted(chosen))


def selected_devices() -> tuple[int, ...] | None:
    """The default device indices, or ``None`` when no selection was made."""
    return _selected

"""The process-wide default device set, chosen with the GPU picker or ``use_devices``.

``replicate(model)`` with ``gpus=None`` and the ``%%replicate`` magic without ``--gpus``
use this selection when one is set, else every device. :func:`observe_selection`
tells listeners (every open GPU picker) of each change. A selection made before
TensorFlow's runtime starts also limits the GPUs TensorFlow takes (see
:mod:`nbreplica.gpus.visible`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable

from nbreplica.gpus import visible
from nbreplica._checks import is_whole

#: A selection listener: called with the new :func:`selected_devices` value.
Listener = Callable[[tuple[int, ...] | None], None]

# Reentrant: a listener may change the selection itself (in the notifying thread).
_lock = threading.RLock()
_selected: tuple[int, ...] | None = None
_changes = 0
_listeners: dict[object, Listener] = {}
_note: str | None = None


def use_devices(indices: Iterable[int] | None) -> None:
    """Make ``indices`` (NVML GPU indices) the default devices; ``None`` goes back to
    "all devices".

    Before TensorFlow's runtime starts (before the first model is built), this also
    makes only these GPUs visible to TensorFlow, with memory growth on, so the kernel
    takes no memory on the other GPUs (``NBREPLICA_TF_ALLOCATOR=default`` keeps
    TensorFlow's own allocation). Afterwards a ``UserWarning`` says which GPUs the
    kernel already holds and how to release them (restart the kernel).

    Listeners registered with :func:`observe_selection` are called when this changes
    the selection.

    Raises:
        TypeError: ``indices`` is a string or no sequence (``use_devices([0, 1])``,
            not ``use_devices("0,1")``).
        ValueError: an index is negative, not an integer, or repeated.
    """
    note = select(indices)
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=2)


def select(indices: Iterable[int] | None) -> str | None:
    """:func:`use_devices` without the warning: return its note instead (``None``:
    nothing to say), for callers that show it themselves."""
    global _selected, _changes, _note
    chosen = None if indices is None else _validated(indices)
    with _lock:
        if chosen == _selected:
            return None
        config = visible.loaded_config()
        _note = None if config is None else visible.limit(config, chosen)
        _selected = chosen
        _changes += 1
        change = _changes
        for listener in list(_listeners.values()):
            if _changes != change:
                return _note  # a listener changed it again, and every listener was told
            try:
                listener(chosen)
            except Exception as exc:
                warnings.warn(f"Selection listener {listener!r} failed: {exc!r}",
                              RuntimeWarning, stacklevel=3)
        return _note


def selected_devices() -> tuple[int, ...] | None:
    """The default device indices, or ``None`` when no selection was made."""
    return _selected


def visibility_note() -> str | None:
    """What the latest change of the selection had to say about the GPUs this kernel's
    TensorFlow holds (see :func:`use_devices`), or ``None``."""
    return _note


def observe_selection(listener: Listener) -> Callable[[], None]:
    """Call ``listener(selected_devices())`` after every change of the selection, until
    the returned function is called.

    Listeners run in the thread that made the change, one change at a time and in
    order: another thread's change waits until they return, so a listener must not
    wait for one. When a listener changes the selection, the listeners not yet called
    get only the newer selection. A listener that raises is reported with a
    ``RuntimeWarning``; the change and the other listeners go ahead.

    Returns:
        A function that unregisters ``listener`` (calling it again does nothing).
    """
    token = object()
    with _lock:
        _listeners[token] = listener

    def unsubscribe() -> None:
        with _lock:
            _listeners.pop(token, None)

    return unsubscribe


def _validated(indices: Iterable[int]) -> tuple[int, ...]:
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Iterable):
        raise TypeError(
            "Device indices must be a sequence of GPU indices such as [0, 1] (or None for "
            f"every device). Received: indices={indices!r}"
        )
    chosen = list(indices)
    for index in chosen:
        if not is_whole(index) or index < 0:
            raise ValueError(
                "Device indices must be non-negative integers. "
                f"Received: indices={chosen!r}"
            )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Device indices must be unique. Received: indices={chosen!r}")
    return tuple(sorted(int(index) for index in chosen))

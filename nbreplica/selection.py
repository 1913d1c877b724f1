"""The process-wide default device set, chosen with the GPU picker or ``use_devices``.

``replicate(model)`` with ``gpus=None`` and the ``%%replicate`` magic without ``--gpus``
use this selection when one is set, else every device. :func:`observe_selection`
tells listeners (every open GPU picker) of each change.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable

#: A selection listener: called with the new :func:`selected_devices` value.
Listener = Callable[[tuple[int, ...] | None], None]

# Reentrant: a listener may change the selection itself (in the notifying thread).
_lock = threading.RLock()
_selected: tuple[int, ...] | None = None
_changes = 0
_listeners: dict[object, Listener] = {}


def use_devices(indices: Iterable[int] | None) -> None:
    """Make ``indices`` the default devices; ``None`` goes back to "all devices".

    Listeners registered with :func:`observe_selection` are called when this changes
    the selection.
    """
    global _selected, _changes
    chosen = None if indices is None else _validated(indices)
    with _lock:
        if chosen == _selected:
            return
        _selected = chosen
        _changes += 1
        change = _changes
        for listener in list(_listeners.values()):
            if _changes != change:
                return  # a listener changed it again, and every listener was told of that
            try:
                listener(chosen)
            except Exception as exc:
                warnings.warn(f"Selection listener {listener!r} failed: {exc!r}",
                              RuntimeWarning, stacklevel=2)


def selected_devices() -> tuple[int, ...] | None:
    """The default device indices, or ``None`` when no selection was made."""
    return _selected


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
    chosen = list(indices)
    for index in chosen:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(
                "Device indices must be non-negative integers. "
                f"Received: indices={chosen!r}"
            )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Device indices must be unique. Received: indices={chosen!r}")
    return tuple(sorted(chosen))

"""A daemon thread that runs a function at a fixed rate until told to stop."""

from __future__ import annotations

import atexit
import threading
import time
import warnings
import weakref
from collections.abc import Callable

_running: weakref.WeakSet[Periodic] = weakref.WeakSet()


class Periodic:
    """Calls ``tick()`` every ``interval`` seconds in a daemon thread.

    Ticks keep a fixed rate (a slow tick shortens the next wait; missed ticks are
    skipped, not bunched). A tick that raises ends the thread: the exception is kept in
    :attr:`error` and reported with a ``RuntimeWarning``, never raised elsewhere. Every
    running instance is stopped at interpreter exit (a kernel shutdown included).
    """

    def __init__(self, tick: Callable[[], None], interval: float, name: str) -> None:
        self.interval = interval
        self.name = name
        self.error: BaseException | None = None
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, immediately: bool = True) -> None:
        """Start ticking.

        Args:
            immediately: run the first tick at once; ``False`` runs it one
                ``interval`` from now (for callers that have just done a tick's work).

        Raises:
            RuntimeError: already running.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running.")
        self.error = None
        self._stop = threading.Event()
        first = time.monotonic() + (0.0 if immediately else self.interval)
        self._thread = threading.Thread(target=self._run, args=(self._stop, first),
                                        name=self.name, daemon=True)
        _running.add(self)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` s for the current tick."""
        self._stop.set()
        _running.discard(self)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, stop: threading.Event, deadline: float) -> None:
        while not stop.wait(max(deadline - time.monotonic(), 0.0)):
            try:
                self._tick()
            except Exception as exc:
                self.error = exc
                _running.discard(self)
                warnings.warn(f"{self.name} stopped after an error: {exc!r}",
                              RuntimeWarning, stacklevel=1)
                return
            deadline = max(deadline + self.interval, time.monotonic())


def _stop_all() -> None:
    for periodic in list(_running):
        periodic.stop(timeout=1.0)


atexit.register(_stop_all)

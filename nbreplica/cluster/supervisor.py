"""The worker command's supervisor: a process without TensorFlow that runs the worker
as its child, and ends it when it is asked to or must.

The worker itself cannot be relied on to react: while it joins its cluster,
TensorFlow holds the GIL inside C++ (no Python thread of the worker runs, for as long
as a peer is missing), and TensorFlow's preemption notifier replaces the SIGTERM
handler with one that only logs "SIGTERM caught". The supervisor never imports
TensorFlow; its main loop reacts within :data:`POLL_INTERVAL` to

- **SIGTERM** (and SIGINT, SIGHUP): it passes the signal on to the worker, which
  stops at once if it is running Python after joining (its handler raises
  :class:`Terminated`), and kills it if it has not ended after
  :data:`GRACE_PERIOD`; then it exits with status 128 + the signal's number.
- **its launcher's end**: :func:`nbreplica.cluster.launch` keeps the write end of a
  pipe open for as long as it lives (:class:`~nbreplica.cluster.processes.Lifeline`),
  the supervisor holds the read end, which reads end-of-file once the launcher is
  gone, however it ended (SIGKILL included), or is ending its workers. A pipe rather
  than Linux's parent-death signal: it says "the launcher process is gone" whichever
  of its threads started the worker (the parent-death signal fires when that *thread*
  ends), it works on every POSIX system, no launcher can die unnoticed before the
  worker starts watching, and the launcher can cut it on purpose to end its workers.
  The supervisor then kills the worker, waits for it, and kills the rest of its
  process group (the launcher starts each worker in a session of its own): the
  job's own processes.
- **the join timeout**: a worker that has not joined its cluster ``timeout`` seconds
  after it started is killed, and the supervisor says so and exits with status 1.

The worker in turn cannot outlive its supervisor: on Linux it is started with the
parent-death signal SIGKILL (``prctl(PR_SET_PDEATHSIG)``), which the kernel delivers
whatever the worker is doing. That signal fires when the thread that started the
worker ends: here the supervisor's main thread, which waits for the worker; and a
supervisor that dies before the worker has armed it is seen by ``getppid``.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

#: Seconds the worker has to end after a signal passed on, before it is killed.
GRACE_PERIOD = 5.0
#: Seconds between two looks at the worker, the launcher and the clock.
POLL_INTERVAL = 0.1
EXIT_ERROR = 1
#: The signals that stop the worker.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class Terminated(BaseException):
    """Raised in the worker's main thread when it received SIGTERM after joining."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """A signal handler: raise :class:`Terminated`."""
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def supervise(prog: str, command: Sequence[str], *, launcher_fd: int | None,
              timeout: float | None) -> int:
    """Run ``command``, the worker, as a child, told through ``--joined-fd FD`` where
    to write once it joined its cluster; returns the exit status for the supervisor.

    Args:
        prog: how the supervisor's messages start (``"nbreplica worker"``).
        command: the worker's command line.
        launcher_fd: the read end of the launcher's lifeline, or ``None``.
        timeout: seconds the worker has to join its cluster; ``None``: no limit.
    """
    received: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, frame: received.append(number))
    reader, writer = os.pipe()
    try:
        worker = subprocess.Popen([*command, "--joined-fd", str(writer)], pass_fds=[writer],
                                  preexec_fn=_dying_with(os.getpid()))
    finally:
        os.close(writer)
    try:
        return _Watch(prog, worker, reader, launcher_fd, timeout, received).run()
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        os.close(reader)


class _Watch:
    """The supervisor's main loop over one worker."""

    def __init__(self, prog: str, worker: subprocess.Popen[bytes], joined: int,
                 launcher_fd: int | None, timeout: float | None, received: list[int]) -> None:
        self.prog, self.worker, self.timeout, self.received = prog, worker, timeout, received
        self.launcher_pid = os.getppid()
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.joined, self.launcher_fd = joined, launcher_fd

    def run(self) -> int:
        """Watch until the worker ends, or must; returns the exit status."""
        while True:
            code = self.worker.poll()
            if code is not None:
                return 128 - code if code < 0 else code
            if self.received:
                return self._stop(self.received[0])
            watched = [fd for fd in (self.joined, self.launcher_fd) if fd is not None]
            ready = select.select(watched, [], [], POLL_INTERVAL)[0]
            if self.launcher_fd in ready and not os.read(self.launcher_fd, 1):
                return self._launcher_gone()
            if self.joined in ready:
                os.read(self.joined, 1)  # a byte: it joined; end-of-file: it ended
                self.joined = self.deadline = None
            if self.deadline is not None and time.monotonic() > self.deadline:
                return self._join_timeout()

    def _stop(self, signum: int) -> int:
        name = signal.Signals(signum).name
        _say(f"{self.prog}: {name} received: the worker stops (it is killed if it has not "
             f"ended in {GRACE_PERIOD:g} s)")
        self.worker.send_signal(signum)
        try:
            self.worker.wait(GRACE_PERIOD)
        except subprocess.TimeoutExpired:
            self.worker.kill()
        return 128 + signum

    def _launcher_gone(self) -> int:
        _say(f"{self.prog}: its launcher (pid {self.launcher_pid}) is gone or ends its "
             "workers: the worker stops")
        self.worker.kill()
        self.worker.wait()  # reaped here: an orphan would wait for init to reap it
        if os.getpgrp() == os.getpid():  # a process group of its own: end all of it
            os.killpg(os.getpid(), signal.SIGKILL)
        return EXIT_ERROR

    def _join_timeout(self) -> int:
        _say(f"{self.prog}: error: the worker did not join its cluster within "
             f"{self.timeout:g} s: some worker that TF_CONFIG lists was not started, or "
             "cannot be reached. Start every one (each with its own task index), or allow "
             f"more time. Received: --timeout {self.timeout:g}")
        return EXIT_ERROR


def _dying_with(parent: int) -> Callable[[], None] | None:
    """What the worker runs before its program starts, on Linux: arm the parent-death
    signal, and end at once if the supervisor ``parent`` is already gone."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the child

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(EXIT_ERROR)

    return arm


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

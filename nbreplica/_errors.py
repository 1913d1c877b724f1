"""Exception types raised by nbreplica (a leaf module: imports nothing of ours)."""

from __future__ import annotations

import sys


class NbreplicaError(Exception):
    """Base class of every error nbreplica raises on purpose."""


class DeviceConfigurationError(NbreplicaError, RuntimeError):
    """TensorFlow's devices cannot be (re)configured as asked, e.g. after start-up."""


class ReplicaError(NbreplicaError, RuntimeError):
    """A failure inside one replica; the message names the replica and its device."""


class SweepError(NbreplicaError, RuntimeError):
    """A speedup sweep could not measure a point."""


class ResultsStoreError(NbreplicaError, RuntimeError):
    """The results file cannot be read or written; the message names it and says why
    (a directory, a full disk, a damaged file, no permission)."""


class WorkerError(NbreplicaError, RuntimeError):
    """A worker process of a multi-worker launch failed; the message names the worker
    and shows its last output lines (``worker`` and ``output`` hold them too)."""

    def __init__(self, message: str, worker: int, output: str) -> None:
        super().__init__(message)
        self.worker = worker
        self.output = output


class LaunchTimeout(NbreplicaError, TimeoutError):
    """Worker processes did not all start and join their cluster in time."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` of a warning that names the caller's line: the first frame
    outside nbreplica, Keras and TensorFlow (counted from the function calling this)."""
    frame, stacklevel = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
            "nbreplica", "keras", "tensorflow"):
        frame, stacklevel = frame.f_back, stacklevel + 1
    return stacklevel

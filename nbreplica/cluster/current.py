"""Where a worker stands in its cluster: :func:`context` inside a worker process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbreplica._errors import NbreplicaError


@dataclass(frozen=True)
class WorkerContext:
    """One worker's place in a multi-worker cluster.

    Attributes:
        index: this worker's position, 0 to ``num_workers - 1`` (the chief is 0).
        num_workers: how many worker processes train together.
        is_chief: whether this worker is the one that writes files and whose return
            value and output the caller sees first.
        strategy: the ``tf.distribute.MultiWorkerMirroredStrategy`` the worker's
            function runs under.
    """

    index: int
    num_workers: int
    is_chief: bool
    strategy: Any


_current: WorkerContext | None = None


def context() -> WorkerContext:
    """This worker's :class:`WorkerContext`.

    Raises:
        NbreplicaError: not called inside a worker process (a function run by
            :func:`nbreplica.cluster.launch`, ``nbreplica worker`` or
            ``python -m nbreplica.cluster``).
    """
    if _current is None:
        raise NbreplicaError(
            "nbreplica.cluster.context() works only inside a worker process started by "
            "nbreplica.cluster.launch, `nbreplica worker` or `python -m "
            "nbreplica.cluster`. Received: a call from a process that is no worker"
        )
    return _current


def enter(worker: WorkerContext) -> None:
    """Make ``worker`` what :func:`context` returns in this process."""
    global _current
    _current = worker

"""What a multi-worker point has where the other strategies have devices: worker
processes (:class:`WorkerProcess`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nbreplica.strategy.names import WORKERS_LABEL


@dataclass(frozen=True)
class WorkerProcess:
    """Worker process ``index`` of a ``"multiworker"`` point on this machine: it trains
    one replica under ``MultiWorkerMirroredStrategy``, on the devices its own
    TensorFlow finds (``nbreplica.cluster``)."""

    index: int
    emulated: ClassVar[bool] = False
    """Never: a worker is a real process, whatever devices it trains on."""

    @property
    def name(self) -> str:
        """How the process shows in reports, e.g. ``"worker 1 (workers on one machine)"``."""
        return f"worker {self.index} ({WORKERS_LABEL})"


def worker_processes(count: int) -> tuple[WorkerProcess, ...]:
    """The ``count`` worker processes of a multi-worker point."""
    return tuple(WorkerProcess(index) for index in range(count))

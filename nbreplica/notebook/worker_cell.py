"""``%%replicate --workers N``: run a self-contained cell in N worker processes.

Every worker runs the cell under ``MultiWorkerMirroredStrategy`` (see
:func:`nbreplica.cluster.launch`); the chief's output is shown as it is written, and
the values the cell defined in the chief (trained Keras models, ``History`` objects,
anything picklable) come back into the notebook's namespace.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from nbreplica._errors import WorkerError
from nbreplica._keras_compat.routed_methods import routed_model_methods
from nbreplica.cluster import RayBackend, launch
from nbreplica.devices import Sampler
from nbreplica.notebook.cell_parallel import CellRun
from nbreplica.notebook.training import FitObserver, TrainingStats
from nbreplica.strategy.names import MULTIWORKER
from nbreplica.strategy.placements import InWorker
from nbreplica.strategy.workers import WorkerProcess


@dataclass(frozen=True)
class CellValues:
    """What the cell left in one worker's namespace, ready to travel back."""

    pickled: dict[str, bytes]
    """Each picklable value, pickled on its own (one bad value spoils no other)."""
    left_out: dict[str, str]
    """Each value that cannot travel, and why."""
    training: TrainingStats | None


@dataclass(frozen=True)
class WorkersRun:
    """One ``%%replicate --workers`` run, as its summary shows it."""

    workers: int
    backend: str
    wall_s: float
    training: TrainingStats | None
    """The chief's training (every worker trains in lockstep)."""
    brought_back: tuple[str, ...]
    left_out: dict[str, str]


def run_in_worker(source: str) -> CellValues:
    """Run the cell ``source`` in this worker, timing its ``fit`` calls; pickle what
    it defined. Every worker pickles alike: reading a distributed model's variables
    is a step all workers take together."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    observer = FitObserver()
    with routed_model_methods(InWorker().route, observer.observe):
        exec(compile(source, "<%%replicate cell>", "exec"), namespace)  # noqa: S102
    pickled, left_out = {}, {}
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        try:
            pickled[name] = cloudpickle.dumps(value)
        except Exception as error:  # whatever pickling raises, the value stays behind
            left_out[name] = f"a {type(value).__name__} cannot be pickled ({error})"
    return CellValues(pickled, left_out, observer.stats())


def run_in_workers(shell: InteractiveShell, cell: str, workers: int,
                   backend: str | RayBackend) -> WorkersRun:
    """Run ``cell`` in ``workers`` fresh worker processes; put the chief's values in
    the shell's namespace."""
    started = time.monotonic()
    chief = launch(run_in_worker, cell, workers=workers, backend=backend)[0]
    wall_s = time.monotonic() - started
    left_out = dict(chief.left_out)
    brought_back = []
    for name, data in chief.pickled.items():
        try:
            shell.user_ns[name] = cloudpickle.loads(data)
        except Exception as error:  # e.g. a class only the workers could import
            left_out[name] = f"cannot be loaded in the notebook ({type(error).__name__}: {error})"
        else:
            brought_back.append(name)
    name = backend if isinstance(backend, str) else "ray"
    return WorkersRun(workers, name, wall_s, chief.training, tuple(brought_back), left_out)


def sweep_point_in_workers(shell: InteractiveShell, cell: str,
                           workers: Sequence[WorkerProcess]) -> CellRun:
    """One point of ``%%replicate --sweep ... --workers``: ``cell`` in one local worker
    per process of ``workers``, as a :class:`CellRun`; a failed worker is shown and becomes the run's error
    (so the sweep stops there and keeps what it measured)."""
    started = time.monotonic()
    result = ExecutionResult(None)
    training = None
    try:
        training = run_in_workers(shell, cell, len(workers), "local").training
    except WorkerError as failure:
        print(f"{type(failure).__name__}: {failure}", file=sys.stderr)
        result.error_in_exec = failure
    return CellRun(result=result, strategy=MULTIWORKER, devices=tuple(workers),
                   started=started, wall_s=time.monotonic() - started, training=training,
                   usage=None, samples=Sampler().to_frame())

"""``launch``: run a function in fresh worker processes that train as one cluster."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbreplica._checks import is_number, is_whole
from nbreplica.gpus.emulation import EMULATE_ENV_VAR
from nbreplica._errors import WorkerError
from nbreplica.cluster import tf_config
from nbreplica.cluster.folders import launch_folder
from nbreplica.cluster.job import Job, encode_job, read_value, write_bytes
from nbreplica.cluster.processes import TAIL_LINES, Lifeline, WorkerGroup, tail
from nbreplica.cluster.ray_launcher import RayBackend, import_ray, run_on_ray

BACKENDS = ("local", "ray")
#: How many times a launch picks new ports when a worker found its port taken.
PORT_ATTEMPTS = 3
#: What TensorFlow writes when a worker's port was taken between pick and bind.
_PORT_TAKEN = ("address already in use", "could not start grpc server",
               "failed to add port")


def launch(fn: Callable[..., Any], *args: Any, workers: int = 2,
           backend: str | RayBackend = "local", timeout: float | None = 600,
           **kwargs: Any) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` in ``workers`` fresh processes that train together.

    Each worker gets its ``TF_CONFIG`` and creates a
    ``tf.distribute.MultiWorkerMirroredStrategy`` before anything else touches
    TensorFlow; ``fn`` is called inside ``strategy.scope()``, so the plain Keras code
    in it (build, compile, fit) trains data-parallel across the workers, each batch
    split between them. ``nbreplica.cluster.context()`` tells ``fn`` where it runs.
    Only the chief (worker 0) writes models where asked (``Model.save``,
    ``save_weights``, ``ModelCheckpoint``, ``TemplateCheckpoint``; the other workers
    save into a temporary folder, deleted at once). The chief's output is shown here
    as it is written. ``fn`` may be defined in a notebook: it is sent with cloudpickle.

    Args:
        fn: the function every worker runs.
        *args, **kwargs: its arguments (picklable values).
        workers: how many worker processes (each is one replica on a CPU-only machine).
        backend: ``"local"``: processes on this machine, talking over 127.0.0.1 on
            free ports. ``"ray"`` (needs ``nbreplica[ray]``): one Ray actor per
            worker, spread over the machines of the Ray cluster this process is
            connected to (``ray.init()`` is called if it is not: ``RAY_ADDRESS``
            names a cluster, else Ray starts on this machine), one CPU each;
            a :class:`~nbreplica.cluster.RayBackend` sets other resources.
        timeout: seconds every worker has to start and join the cluster (``None``:
            no limit), on Ray including the wait for its resources; training itself
            is not limited.

    Returns:
        What ``fn`` returned in each worker, in worker-index order (a Keras model
        comes back trained, as an ordinary model).

    Raises:
        TypeError: ``fn`` or an argument cannot be pickled; the message names which.
        WorkerError: a worker failed; the message names it and shows its last output.
        LaunchTimeout: some worker did not start or join the cluster in time.
        KeyboardInterrupt: after the workers were stopped.

    Whatever ends a launch, every worker process has ended when it returns or raises
    (on Ray: every actor is killed, and the processes on this machine have ended).
    Should this process be killed first (SIGKILL, SIGTERM), each local worker notices
    within a second and ends itself, and the next launch removes the launch's folder;
    Ray kills the actors of a driver that died.
    """
    _check(fn, workers, backend, timeout)
    if backend != "local":
        import_ray()  # first: without Ray, what to install is all there is to say
    job = encode_job(Job(fn, args, kwargs))
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return _run_once(job, workers, backend, timeout)
        except WorkerError as error:
            if not _port_taken(error):
                raise
    return _run_once(job, workers, backend, timeout)


def _run_once(job: bytes, workers: int, backend: str | RayBackend,
              timeout: float | None) -> list[Any]:
    if backend == "local":
        with launch_folder() as folder:
            return _run_local(job, workers, timeout, folder)
    ray_backend = backend if isinstance(backend, RayBackend) else RayBackend()
    return run_on_ray(job, workers, timeout, ray_backend)


def _check(fn: Callable[..., Any], workers: int, backend: str | RayBackend,
           timeout: float | None) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be a function to run in every worker. Received: fn={fn!r}")
    if not is_whole(workers) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1. Received: workers={workers!r}")
    if not isinstance(backend, RayBackend) and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or a RayBackend. "
                         f"Received: backend={backend!r}")
    if timeout is not None and (not is_number(timeout) or not timeout > 0):
        raise ValueError(
            f"timeout must be a number of seconds > 0, or None. Received: timeout={timeout!r}"
        )


def _run_local(job: bytes, workers: int, timeout: float | None, folder: Path) -> list[Any]:
    job_file = folder / "job.pkl"
    write_bytes(job_file, job)
    results = [folder / f"result-{index}.pkl" for index in range(workers)]
    ready = [folder / f"ready-{index}" for index in range(workers)]
    environments = [worker_environment(config) for config in tf_config.local_configs(workers)]
    with Lifeline() as lifeline:
        command = worker_command(job_file, folder / "result-{index}.pkl",
                                 folder / "ready-{index}", lifeline.reader)
        with WorkerGroup([command] * workers, environments, folder, lifeline) as group:
            group.wait(ready, timeout, echo=sys.stdout)
            return [_result(group, index, path) for index, path in enumerate(results)]


def worker_command(job: Path, result: Path, ready: Path, launcher_fd: int) -> list[str]:
    """The command that runs one worker of ``job`` with this Python. The launcher
    watches the join timeout itself (``--timeout 0``); the worker watches
    ``launcher_fd``, its :class:`~nbreplica.cluster.processes.Lifeline`."""
    return [sys.executable, "-m", "nbreplica.cluster", str(job), "--result", str(result),
            "--ready", str(ready), "--timeout", "0", "--launcher-fd", str(launcher_fd)]


def _result(group: WorkerGroup, index: int, path: Path) -> Any:
    """What worker ``index``, which ended well, wrote to ``path``."""
    if not path.exists():
        output = tail(group.logs[index], TAIL_LINES)
        raise WorkerError(
            f"worker {index} (pid {group.pids[index]}) exited with status 0 but wrote no "
            "result: its function ended the process (os._exit?) instead of returning. "
            f"Its last output lines:\n{output}", worker=index, output=output,
        )
    return read_value(path)


def worker_environment(config: str) -> dict[str, str]:
    """A worker's environment: this process's, with ``TF_CONFIG`` set, this process's
    import path (so that workers import the same nbreplica and the caller's modules),
    unbuffered output, TensorFlow's C++ log limited to errors (unless
    ``TF_CPP_MIN_LOG_LEVEL`` says otherwise), and no emulated GPUs (each worker is one
    replica on a CPU)."""
    environment = {key: value for key, value in os.environ.items() if key != EMULATE_ENV_VAR}
    path = [entry or os.getcwd() for entry in sys.path]
    environment.update(TF_CONFIG=config, PYTHONPATH=os.pathsep.join(path),
                       PYTHONUNBUFFERED="1")
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return environment


def _port_taken(error: WorkerError) -> bool:
    output = error.output.lower()
    return any(marker in output for marker in _PORT_TAKEN)

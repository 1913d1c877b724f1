"""``launch(..., backend="ray")``: workers placed on a Ray cluster, one Ray actor each.

Ray places the worker processes (a placement group holds one bundle of resources per
worker, spread over the cluster's machines by default) and carries the job and the
return values; TensorFlow's own collective operations carry the training, over the
addresses each node reports. Ray is started with ``ray.init()`` unless this process
is connected already: the ``RAY_ADDRESS`` variable (or an earlier
``ray.init(address=...)``) names an existing cluster, otherwise Ray starts on this
machine and stays up for later launches.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from nbreplica._checks import is_number
from nbreplica._errors import LaunchTimeout, WorkerError
from nbreplica.cluster import tf_config
from nbreplica.cluster.job import decode
from nbreplica.cluster.processes import (
    GRACE_PERIOD,
    POLL_INTERVAL,
    TAIL_LINES,
    Echo,
    out_of_step_hint,
    running,
)
from nbreplica.cluster.ray_worker import READ_LIMIT, Place, RayWorker

#: Seconds between two readings of the chief's output.
ECHO_INTERVAL = 0.5

#: Ray's placement-group strategies.
PLACEMENTS = ("SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK")


@dataclass(frozen=True)
class RayBackend:
    """How ``launch(..., backend=RayBackend(...))`` places its workers on Ray;
    ``backend="ray"`` is ``RayBackend()``.

    Attributes:
        cpus_per_worker: CPUs Ray reserves for each worker.
        gpus_per_worker: GPUs Ray reserves for each worker (Ray sets the worker's
            ``CUDA_VISIBLE_DEVICES`` to them).
        placement: Ray's placement-group strategy: ``"SPREAD"`` puts workers on
            different machines where it can, ``"PACK"`` on as few as it can (the
            ``STRICT_`` forms insist).
    """

    cpus_per_worker: float = 1
    gpus_per_worker: float = 0
    placement: str = "SPREAD"

    def __post_init__(self) -> None:
        for name in ("cpus_per_worker", "gpus_per_worker"):
            value = getattr(self, name)
            if not is_number(value) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0. Received: {name}={value!r}")
        if not self.bundle:
            raise ValueError(
                "A worker needs CPUs or GPUs: cpus_per_worker or gpus_per_worker must be "
                f"> 0. Received: cpus_per_worker={self.cpus_per_worker!r}, "
                f"gpus_per_worker={self.gpus_per_worker!r}"
            )
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}. "
                             f"Received: placement={self.placement!r}")

    @property
    def bundle(self) -> dict[str, float]:
        """The resources of one worker, as a placement-group bundle."""
        resources = {"CPU": self.cpus_per_worker, "GPU": self.gpus_per_worker}
        return {name: amount for name, amount in resources.items() if amount}


def run_on_ray(job: bytes, workers: int, timeout: float | None,
               backend: RayBackend) -> list[Any]:
    """Run ``job`` (a job, encoded) in ``workers`` Ray actors that train as one
    cluster; returns its values in worker-index order. Every actor is killed, and its
    placement group removed, before this returns or raises; and Ray kills them too
    should this process die first (an actor's fate is its owner's)."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init()
    deadline = None if timeout is None else time.monotonic() + timeout
    group = _ActorGroup(ray, workers, backend)
    try:
        group.reserve(deadline, timeout)
        group.places = group.call_each("place", [()] * workers, deadline, timeout)
        configs = tf_config.configs([place.address for place in group.places])
        group.call_each("join", [(config,) for config in configs], deadline, timeout)
        shared_job = ray.put(job)  # sent to the object store once, not once per worker
        values = group.call_each("run", [(shared_job,)] * workers, None, timeout,
                                 echo=sys.stdout)
        return [decode(value) for value in values]
    finally:
        group.end()


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ImportError: Ray is not installed; the message says what to install.
    """
    try:
        import ray
    except ImportError:
        raise ImportError(
            "backend='ray' needs Ray: pip install 'nbreplica[ray]'. Received: "
            "backend='ray' in an environment without the ray package"
        ) from None
    return ray


class _ActorGroup:
    """The workers of one launch: a placement group and one actor per bundle."""

    def __init__(self, ray: Any, workers: int, backend: RayBackend) -> None:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.ray, self.backend = ray, backend
        self.places: list[Place] = []
        self.placement = placement_group([backend.bundle] * workers,
                                         strategy=backend.placement)
        environment = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                       "PYTHONUNBUFFERED": "1"}
        actor = ray.remote(RayWorker)
        self.actors = [
            actor.options(
                num_cpus=backend.cpus_per_worker, num_gpus=backend.gpus_per_worker,
                max_restarts=0, max_concurrency=2, runtime_env={"env_vars": environment},
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    self.placement, placement_group_bundle_index=index),
            ).remote()
            for index in range(workers)
        ]

    def reserve(self, deadline: float | None, timeout: float | None) -> None:
        """Wait until Ray has reserved every worker's resources."""
        ready, _ = self.ray.wait([self.placement.ready()], timeout=_left(deadline))
        if not ready:
            raise LaunchTimeout(
                f"Ray could not place {len(self.actors)} workers with "
                f"{self.backend.bundle} each within {timeout:g} s (the cluster has "
                f"{self.ray.cluster_resources()} in all); every worker was stopped. "
                f"Received: timeout={timeout!r}"
            )

    def call_each(self, method: str, arguments: Sequence[tuple[Any, ...]],
                  deadline: float | None, timeout: float | None,
                  echo: TextIO | None = None) -> list[Any]:
        """Call ``method`` on every actor, actor i with ``arguments[i]``, copying the
        chief's output to ``echo`` meanwhile; returns what they returned, in actor
        order.

        Raises:
            WorkerError: an actor failed or died (the first failure seen).
            LaunchTimeout: not every call returned by ``deadline``.
        """
        calls = [getattr(actor, method).remote(*args)
                 for actor, args in zip(self.actors, arguments)]
        chief = _ChiefOutput(self.ray, self.actors[0], echo)
        waiting = list(calls)
        while waiting:
            done, waiting = self.ray.wait(waiting, num_returns=1, timeout=POLL_INTERVAL)
            chief.copy_new(every=ECHO_INTERVAL)
            for call in done:
                self._check(calls.index(call), call)
            if waiting and deadline is not None and time.monotonic() > deadline:
                late = ", ".join(str(calls.index(call)) for call in waiting)
                raise LaunchTimeout(
                    f"worker(s) {late} did not start and join the cluster within "
                    f"{timeout:g} s; every worker was stopped. Received: timeout={timeout!r}"
                )
        chief.copy_new()
        return self.ray.get(calls)

    def _check(self, index: int, call: Any) -> None:
        try:
            self.ray.get(call)
        except self.ray.exceptions.RayError as error:
            where = f"worker {index}" + (f" (pid {self.places[index].pid})"
                                         if self.places else "")
            text = f"{self._last_output(index)}\n{error}"
            output = "\n".join(text.strip("\n").splitlines()[-TAIL_LINES:])
            how = ("died" if isinstance(error, self.ray.exceptions.RayActorError)
                   else "failed")
            raise WorkerError(
                f"{where} {how}; every worker was stopped. {out_of_step_hint(output)}"
                f"Its last output lines:\n{output}",
                worker=index, output=output,
            ) from None

    def _last_output(self, index: int) -> str:
        """What actor ``index`` wrote last, or nothing if it cannot tell any more."""
        actor = self.actors[index]
        try:
            size = self.ray.get(actor.size.remote(), timeout=GRACE_PERIOD * 5)
            data = self.ray.get(actor.output.remote(max(0, size - READ_LIMIT)),
                                timeout=GRACE_PERIOD * 5)
        except self.ray.exceptions.RayError:
            return ""
        return data.decode(errors="replace")

    def end(self) -> None:
        """Kill every actor and free their resources; wait until the processes of
        those on this machine have ended, sending SIGKILL to any still running after
        the grace period (Ray ends the others)."""
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        remove_placement_group(self.placement)
        here = self.ray.get_runtime_context().get_node_id()
        end_processes([place.pid for place in self.places if place.node_id == here],
                      GRACE_PERIOD * 10)


class _ChiefOutput:
    """Copies the chief actor's new output to a stream, at most once per interval."""

    def __init__(self, ray: Any, chief: Any, stream: TextIO | None) -> None:
        self.ray, self.chief, self.echo = ray, chief, Echo(stream)
        self.offset, self.last = 0, 0.0

    def copy_new(self, every: float = 0.0) -> None:
        """Copy what the chief wrote since the last copy, unless that was less than
        ``every`` seconds ago. A chief that died is left to the failure it causes."""
        if self.echo.stream is None or time.monotonic() - self.last < every:
            return
        self.last = time.monotonic()
        try:
            while True:
                data = self.ray.get(self.chief.output.remote(self.offset))
                self.offset += len(data)
                self.echo.write(data)
                if len(data) < READ_LIMIT:
                    return
        except self.ray.exceptions.RayError:
            pass


def end_processes(pids: list[int], grace: float) -> None:
    """Wait up to ``grace`` seconds for the processes ``pids`` (killed actors) to end;
    send SIGKILL to those still running (on a machine too busy for Ray to end them in
    time) and wait for them as long again."""
    left = _wait_for_exit(pids, grace)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_for_exit(left, grace)


def _wait_for_exit(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds until none of ``pids`` is running; returns those
    still running."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [pid for pid in pids if running(pid)]
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(POLL_INTERVAL)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())

"""One worker of a launch on Ray: a Ray actor, in a fresh Ray worker process.

The launcher asks each actor for an address on its node, sends every actor the
cluster's ``TF_CONFIG``, lets them join (each creates its strategy before anything
else touches TensorFlow, exactly as ``nbreplica worker`` does), then has them run the
job. The actor's class is plain Python: the launcher makes it a Ray actor with the
resources asked for, and with a second thread, so that the launcher can read the
worker's output while the job runs.

The worker's output (its standard output and error, TensorFlow's C++ lines included)
goes to a file that is deleted at once and read through an open descriptor, so it
disappears with the process. The launcher shows the chief's and quotes a failed
worker's last lines, as with local workers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import NamedTuple

from nbreplica.gpus.emulation import EMULATE_ENV_VAR
from nbreplica.cluster import tf_config, worker
from nbreplica.cluster.job import decode, encode

#: The most output a worker hands over at once, in bytes.
READ_LIMIT = 1 << 20


class Place(NamedTuple):
    """Where a worker runs."""

    address: str
    """``host:port`` for ``TF_CONFIG``: the node's address as Ray knows it, and a
    port that was free on it."""
    node_id: str
    """Ray's id of the node."""
    pid: int
    """The worker's process id on that node."""


class RayWorker:
    """A worker process placed by Ray."""

    def __init__(self) -> None:
        # Each worker is one replica of its own devices, never of emulated ones.
        os.environ.pop(EMULATE_ENV_VAR, None)
        self._log = _capture_output()

    def place(self) -> Place:
        """Where this worker runs, with a free port for its cluster address."""
        import ray

        host = ray.util.get_node_ip_address()
        return Place(tf_config.address(host, tf_config.free_ports(1, host)[0]),
                     ray.get_runtime_context().get_node_id(), os.getpid())

    def join(self, config: str) -> None:
        """Join the cluster ``config`` (a ``TF_CONFIG`` value) describes; returns once
        every worker has joined."""
        os.environ[tf_config.ENV_VAR] = config
        worker.join_cluster()

    def run(self, job: bytes) -> bytes:
        """Run ``job`` (a job, encoded) in the cluster; returns its value, encoded."""
        try:
            return encode(worker.run_job(decode(job)))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    def output(self, offset: int) -> bytes:
        """This worker's output from byte ``offset`` on (at most ``READ_LIMIT`` bytes)."""
        return os.pread(self._log, READ_LIMIT, offset)

    def size(self) -> int:
        """How many bytes of output this worker has written."""
        return os.fstat(self._log).st_size


def _capture_output() -> int:
    """Send this process's standard output and error to a file deleted at once;
    returns a descriptor to read it through."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor, path = tempfile.mkstemp(prefix="nbreplica-ray-worker-", suffix=".log")
    reader = os.open(path, os.O_RDONLY)
    os.unlink(path)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    return reader

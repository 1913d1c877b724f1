"""``TF_CONFIG``: the cluster description TensorFlow's multi-worker strategy reads.

The launcher writes one per worker; a worker reads its own, whoever set it (the
launcher, Ray, or a cluster manager such as Slurm or Kubernetes).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from nbreplica._errors import NbreplicaError

ENV_VAR = "TF_CONFIG"
#: Task types a ``MultiWorkerMirroredStrategy`` cluster may hold, chief first.
TASK_TYPES = ("chief", "worker")


@dataclass(frozen=True)
class Task:
    """This process's task, read from ``TF_CONFIG``."""

    index: int
    """Position among all tasks: the chief (if any) first, then the workers."""
    num_workers: int
    """How many tasks the cluster holds, the chief included."""
    address: str
    """Where this task listens (``host:port``)."""
    addresses: tuple[str, ...]
    """Every task's address, in index order."""

    @property
    def is_chief(self) -> bool:
        """Task 0 is the chief: the ``chief`` task if there is one, else worker 0."""
        return self.index == 0


def local_configs(count: int) -> list[str]:
    """``TF_CONFIG`` values for ``count`` workers on this machine's loopback address,
    each on a port that was free when it was picked."""
    return configs([address("127.0.0.1", port) for port in free_ports(count)])


def configs(addresses: list[str]) -> list[str]:
    """``TF_CONFIG`` values for the workers at ``addresses`` (``host:port``), in
    worker-index order."""
    return [
        json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})
        for i in range(len(addresses))
    ]


def address(host: str, port: int) -> str:
    """``host:port`` as ``TF_CONFIG`` writes it (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that nothing listens on now.

    Another process may take one before a worker binds it; the launcher retries then.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def read_task(raw: str | None = None) -> Task:
    """This process's task from ``raw`` (default: the ``TF_CONFIG`` variable).

    Raises:
        NbreplicaError: ``TF_CONFIG`` is missing, does not describe a task of a
            ``chief``/``worker`` cluster, its task index is out of range, or an
            address has no valid port; the message says which.
    """
    raw = os.environ.get(ENV_VAR) if raw is None else raw
    if not raw:
        raise NbreplicaError(
            "TF_CONFIG is not set: a worker needs the cluster's description in it, set by "
            "nbreplica.cluster.launch or the cluster manager. Received: TF_CONFIG="
            f"{raw!r}"
        )
    cluster, task_type, task_index = _parsed(raw)
    groups = [kind for kind in TASK_TYPES if kind in cluster]
    addresses = tuple(address for kind in groups for address in cluster[kind])
    if not 0 <= task_index < len(cluster[task_type]):
        raise NbreplicaError(
            f"TF_CONFIG's task index {task_index} is out of range: its cluster has "
            f"{len(cluster[task_type])} {task_type!r} task(s), indices 0 to "
            f"{len(cluster[task_type]) - 1}. Give every process its own index. "
            f"Received: TF_CONFIG={raw!r}"
        )
    for address in addresses:
        _check_port(address, raw)
    index = (len(cluster.get("chief", ())) if task_type == "worker" else 0) + task_index
    return Task(index=index, num_workers=len(addresses), address=addresses[index],
                addresses=addresses)


def _parsed(raw: str) -> tuple[dict[str, list[str]], str, int]:
    """``TF_CONFIG``'s cluster, task type and task index, checked for their form."""
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        task_type, task_index = task["type"], int(task["index"])
        if (task_type not in cluster or set(cluster) - set(TASK_TYPES)
                or not all(isinstance(group, list) and all(isinstance(a, str) for a in group)
                           for group in cluster.values())):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise NbreplicaError(
            "TF_CONFIG must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
            "\"task\": {\"type\": \"worker\", \"index\": 0}} (a \"chief\" group is "
            f"allowed too, nothing else). Received: TF_CONFIG={raw!r}"
        ) from None
    return cluster, task_type, task_index


def _check_port(address: str, raw: str) -> None:
    host, _, port = address.rpartition(":")
    if not (host and port.isdigit() and 1 <= int(port) <= 65535):
        raise NbreplicaError(
            f"TF_CONFIG's address {address!r} has no valid port: write host:port with a "
            f"port from 1 to 65535. Received: TF_CONFIG={raw!r}"
        )

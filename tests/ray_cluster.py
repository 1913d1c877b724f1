"""A Ray started on this machine for the tests of ``launch(..., backend="ray")``: it
knows only the loopback address, and everything it started must be gone when the
test session ends."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

# On Linux, Ray advertises the machine's network address even when told 127.0.0.1;
# with this set before Ray is imported, every node address it hands out is loopback.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def children_of(pid: int) -> set[int]:
    """Every process ``pid`` started, directly or not, that is running now."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while the table was read
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def still_running(pids: set[int] | list[int], within: float = 15.0) -> list[int]:
    """Those of ``pids`` still running after up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = sorted(pid for pid in pids if _running(pid))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def ray_workers_running(within: float = 30.0) -> list[int]:
    """The processes of nbreplica's Ray workers (Ray titles them after the actor class)
    still running after up to ``within`` seconds: Ray ends killed actors in the
    background, which takes a while on a machine running two test suites."""
    titled = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::RayWorker"):
                titled.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended while it was looked at
    return still_running(titled, within)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="session")
def local_ray():
    """Ray on this machine with 2 CPUs; its workers import what this process imports."""
    import ray

    before = children_of(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={
        "env_vars": {"PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}})
    daemons = children_of(os.getpid()) - before
    assert daemons, "Ray started no process"
    yield ray
    started = daemons | children_of(os.getpid()) - before
    ray.shutdown()
    assert still_running(started) == []

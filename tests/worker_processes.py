"""Worker processes of ``nbreplica.cluster`` in tests: every one started is recorded,
and must be gone, with its whole process group, when the test ends."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from nbreplica.cluster import launcher, processes


def group_alive(pid: int) -> bool:
    """Whether any process of the group ``pid`` leads is still running."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_naming(text: str) -> list[int]:
    """The ids of the processes whose command line contains ``text``, read from the
    process table (``/proc``): every process of the machine, not only those this test
    holds a handle of. A zombie (ended, not yet reaped) has no command line."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:  # not a process, or one that ended meanwhile
            continue
        if entry.name.isdigit() and int(entry.name) != os.getpid() and text in command:
            found.append(int(entry.name))
    return found


def gone_within(text: str, seconds: float) -> list[int]:
    """Wait up to ``seconds`` until no process names ``text``; returns those still
    there (empty: none)."""
    deadline = time.monotonic() + seconds
    while (left := processes_naming(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def pids_written(folder: Path) -> list[int]:
    """The process ids workers wrote to ``folder`` (``cluster_jobs.write_pid``)."""
    return [int(path.read_text()) for path in sorted(folder.glob("pid-*"))]


def ctrl_c_once_written(path: Path) -> None:
    """Send this process SIGINT (what Ctrl-C sends) once ``path`` exists."""
    def interrupt() -> None:
        while not path.exists():
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()


@pytest.fixture
def spawned(monkeypatch):
    """The process ids of every worker launched during the test; checked afterwards."""
    started: list[int] = []

    class RecordedGroup(processes.WorkerGroup):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.extend(self.pids)

    monkeypatch.setattr(launcher, "WorkerGroup", RecordedGroup)
    yield started
    assert started, "the test started no worker"
    assert [pid for pid in started if group_alive(pid)] == []

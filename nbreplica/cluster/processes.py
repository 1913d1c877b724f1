"""Worker processes started together, watched together and ended together.

Each worker runs in a session of its own, so that its whole process tree can be
ended at once and a Ctrl-C in the terminal reaches the launcher only. TensorFlow
catches SIGTERM and keeps running, so a worker that is still alive after a short
grace period is ended with SIGKILL. Workers that watch a :class:`Lifeline` (the
worker command's supervisor does) are asked first, by cutting it: each then kills
its worker process and ends at once, and a launcher killed before it could end its
workers cuts it too, by dying.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from nbreplica._errors import LaunchTimeout, WorkerError

#: Seconds between two looks at the workers.
POLL_INTERVAL = 0.05
#: Seconds a worker has to end after SIGTERM before it is killed.
GRACE_PERIOD = 1.0
#: How many of a failed worker's last output lines its error shows.
TAIL_LINES = 30
#: What a worker's output says when the workers did not run the same collective
#: steps, and what that means.
_OUT_OF_STEP = ("Collective instance", "Shape mismatch in the collective")
_OUT_OF_STEP_HINT = (
    "The workers fell out of step: every worker must run the same steps (the same "
    "epochs and steps_per_epoch, the same fit, evaluate and save calls, in the same "
    "order). "
)


class WorkerGroup:
    """Worker processes, one a command, each writing its output to a log file.

    Use it as a context manager: on leaving, however that happens (an error, a
    timeout, ``KeyboardInterrupt``), every process still running is ended. Each
    process inherits ``lifeline``'s read end, if one is given.
    """

    def __init__(self, commands: Sequence[Sequence[str]],
                 environments: Sequence[Mapping[str, str]], folder: Path,
                 lifeline: Lifeline | None = None) -> None:
        self.logs = [folder / f"worker-{index}.log" for index in range(len(commands))]
        self.lifeline = lifeline
        pass_fds = () if lifeline is None else (lifeline.reader,)
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for command, environment, log in zip(commands, environments, self.logs):
                with log.open("wb") as output:
                    self.processes.append(subprocess.Popen(
                        list(command), env=dict(environment), stdout=output,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True, pass_fds=pass_fds,
                    ))
        except BaseException:
            self.end()  # the workers started before the one that could not start
            raise

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.end()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (each also its process group's and session's)."""
        return [process.pid for process in self.processes]

    def wait(self, ready: Sequence[Path], timeout: float | None,
             echo: TextIO | None = None) -> None:
        """Wait until every worker has ended well, copying worker 0's output to ``echo``.

        Raises:
            WorkerError: a worker ended with a non-zero status (the first one seen).
            LaunchTimeout: after ``timeout`` seconds some worker had not yet created
                its ``ready`` file.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = _Follower(self.logs[0], echo)
        while True:
            shown.copy_new()
            codes = [process.poll() for process in self.processes]
            for index, code in enumerate(codes):
                if code not in (None, 0):
                    shown.copy_new()
                    raise self._failure(index, code)
            if all(code == 0 for code in codes):
                return
            if deadline is not None:
                waiting = [index for index, path in enumerate(ready) if not path.exists()]
                if not waiting:
                    deadline = None
                elif time.monotonic() > deadline:
                    raise LaunchTimeout(
                        f"worker(s) {', '.join(map(str, waiting))} did not start and join "
                        f"the cluster within {timeout:g} s; every worker was stopped. "
                        f"Received: timeout={timeout!r}"
                    )
            time.sleep(POLL_INTERVAL)

    def _failure(self, index: int, code: int) -> WorkerError:
        output = tail(self.logs[index], TAIL_LINES)
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0
               else f"exited with status {code}")
        return WorkerError(
            f"worker {index} (pid {self.processes[index].pid}) {how}; every worker was "
            f"stopped. {out_of_step_hint(output)}Its last output lines:\n{output}",
            worker=index, output=output,
        )

    def end(self) -> None:
        """End every worker: cut the lifeline (if any) and wait up to the grace period;
        then SIGTERM to each whole process group still there, and SIGKILL after the
        grace period; reap the workers."""
        if self.lifeline is not None:
            self.lifeline.cut()
            self._wait_a_grace_period()
        _signal_groups([process for process in self.processes if process.poll() is None],
                       signal.SIGTERM)
        self._wait_a_grace_period()
        _signal_groups(self.processes, signal.SIGKILL)
        for process in self.processes:
            process.wait()

    def _wait_a_grace_period(self) -> None:
        deadline = time.monotonic() + GRACE_PERIOD
        while any(process.poll() is None for process in self.processes) and (
                time.monotonic() < deadline):
            time.sleep(POLL_INTERVAL)


class Lifeline:
    """A pipe that tells workers whether their launcher lives: they inherit its read
    end (``--launcher-fd``), which reads end-of-file once its write end is closed:
    by :meth:`cut`, or by the end of this process, however it ends. No other process
    holds the write end (a process forked from this one without ``exec`` would).

    Use it as a context manager: on leaving, both ends are closed.
    """

    def __init__(self) -> None:
        self.reader, writer = os.pipe()
        self._writer: int | None = writer

    def __enter__(self) -> Lifeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cut()
        os.close(self.reader)

    def cut(self) -> None:
        """Close the write end: every worker watching the read end sees end-of-file."""
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None


def running(pid: int) -> bool:
    """Whether a process ``pid`` runs: it exists, and (where ``/proc`` tells) is no
    zombie, which has ended but waits for its parent to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to tell
    return state != "Z"


def out_of_step_hint(output: str) -> str:
    """What a failed worker's ``output`` means if it shows the workers fell out of
    step, else an empty string."""
    return _OUT_OF_STEP_HINT if any(marker in output for marker in _OUT_OF_STEP) else ""


def _signal_groups(processes: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of the text file at ``path``."""
    text = path.read_bytes().decode(errors="replace")
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class Echo:
    """Copies a worker's output, as it arrives in pieces, to a stream, whole
    characters at a time (a piece may end inside a UTF-8 character)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, data: bytes) -> None:
        if self.stream is None:
            return
        text = self.decoder.decode(data)
        if text:
            self.stream.write(text)
            self.stream.flush()


class _Follower:
    """Copies what is appended to a log file to a stream."""

    def __init__(self, path: Path, stream: TextIO | None) -> None:
        self.path, self.echo, self.offset = path, Echo(stream), 0

    def copy_new(self) -> None:
        if self.echo.stream is None:
            return
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        self.echo.write(data)

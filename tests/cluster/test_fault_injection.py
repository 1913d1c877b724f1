"""Faults driven on purpose: a killed launcher, SIGTERM to a worker, a worker that
cannot join, hangs or ends itself, a taken port, bad job files, results and
TF_CONFIG values; broken results stores; bad arguments of the magics and the API.

Each fault must end in a clear error (or in the worker's end) and with nothing left
running: the processes a test starts all name its ``tmp_path`` (their job file, or
their launch folder under ``TMPDIR``), and the process table (``/proc``), not only the
handles the test holds, must show none of them afterwards. Workers talk over
127.0.0.1 on free ports; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cluster_jobs import (
    exit_instead_of_returning,
    hang_in_worker_1,
    remove_then_return,
    sleep_forever,
)
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

from worker_processes import gone_within, pids_written, processes_naming

import nbreplica
from nbreplica.bench import store_errors
from nbreplica.bench.store import ResultsStore
from nbreplica.cluster import WorkerError, launch, tf_config, write_job
from nbreplica.cluster.folders import reclaim
from nbreplica.cluster.job import read_value
from nbreplica.cluster.launcher import worker_environment
from nbreplica.cluster.supervisor import GRACE_PERIOD

LAUNCHER = """\
import sys
from cluster_jobs import sleep_forever
from nbreplica.cluster import launch
launch(sleep_forever, sys.argv[1], workers=int(sys.argv[2]), timeout=200)
"""


@pytest.fixture
def started(tmp_path):
    """The processes the test starts; afterwards none naming ``tmp_path`` may be left
    in the process table. What is left is killed (SIGKILL: TensorFlow ignores SIGTERM)
    after a grace period, so that a failing test leaves nothing running either."""
    (tmp_path / "tmp").mkdir()
    handles: list[subprocess.Popen[bytes]] = []
    yield handles
    left = gone_within(str(tmp_path), 10)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for handle in handles:
        handle.kill()
        handle.wait()
    assert left == []


def start(started, tmp_path: Path, command: list[str], config: str = "") -> subprocess.Popen:
    """Start ``command`` with the test's import path, ``TF_CONFIG`` = ``config`` and a
    temporary folder of its own, its output going to a log in ``tmp_path``."""
    environment = {**worker_environment(config), "TMPDIR": str(tmp_path / "tmp")}
    with (tmp_path / f"log-{len(started)}.txt").open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    started.append(process)
    return process


def output(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / f"log-{index}.txt").read_text(errors="replace")


def worker(started, tmp_path: Path, job: Path | str, config: str, *flags: str):
    """``nbreplica worker JOB FLAGS`` as a cluster manager starts it."""
    command = [sys.executable, "-m", "nbreplica", "worker", str(job), *flags]
    return start(started, tmp_path, command, config)


def single_worker() -> str:
    return tf_config.local_configs(1)[0]


def peer_missing() -> str:
    """Worker 0's TF_CONFIG in a cluster of two whose worker 1 never starts."""
    return tf_config.local_configs(2)[0]


def wait_until(condition, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the process ended first (status {process.poll()})"
        assert time.monotonic() < deadline, f"not so within {seconds} s"
        time.sleep(0.1)


def joining(supervisor: subprocess.Popen, job: Path) -> bool:
    """Whether the worker the supervisor started has its gRPC server up, i.e. waits
    inside TensorFlow's C++ for its peers."""
    children = [pid for pid in processes_naming(str(job)) if pid != supervisor.pid]
    return any(_thread_names(pid).count("grpc") for pid in children)


def _thread_names(pid: int) -> str:
    with contextlib.suppress(OSError):
        return " ".join(path.read_text() for path in Path(f"/proc/{pid}/task").glob("*/comm"))
    return ""


def exit_status_within(process: subprocess.Popen, seconds: float) -> tuple[int, float]:
    began = time.monotonic()
    status = process.wait(seconds)
    return status, time.monotonic() - began


# --- The launcher dies -----------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum, workers", [(signal.SIGKILL, 2), (signal.SIGTERM, 1)],
                         ids=["SIGKILL", "SIGTERM"])
def test_workers_end_with_their_launcher(started, tmp_path, signum, workers):
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    launcher = start(started, tmp_path, [sys.executable, str(script), str(tmp_path),
                                         str(workers)])
    wait_until(lambda: len(pids_written(tmp_path)) == workers, 180, launcher)
    folder = f"nbreplica-launch-{launcher.pid}-"
    assert len(processes_naming(folder)) == 2 * workers  # each: a supervisor, its worker
    assert reclaim(tmp_path / "tmp") == []  # a live launcher's folder stays

    os.kill(launcher.pid, signum)
    launcher.wait()
    assert gone_within(folder, 5) == []
    (left,) = (tmp_path / "tmp").glob(f"{folder}*")
    assert reclaim(tmp_path / "tmp") == [left] and not left.exists()


# --- The worker command ----------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("phase", ["joining", "running"])
def test_a_worker_ends_on_sigterm(started, tmp_path, phase):
    job = write_job(tmp_path / "job.pkl", sleep_forever, str(tmp_path))
    config = peer_missing() if phase == "joining" else single_worker()
    supervisor = worker(started, tmp_path, job, config)
    if phase == "joining":  # TensorFlow holds the GIL and swallows SIGTERM meanwhile
        wait_until(lambda: joining(supervisor, job), 150, supervisor)
    else:
        wait_until(lambda: pids_written(tmp_path), 150, supervisor)

    supervisor.send_signal(signal.SIGTERM)
    status, took = exit_status_within(supervisor, GRACE_PERIOD + 10)
    assert status == 128 + signal.SIGTERM
    assert took < (GRACE_PERIOD + 3 if phase == "joining" else 2)
    assert "nbreplica worker: SIGTERM received: the worker stops" in output(tmp_path)


@pytest.mark.timeout(180)
def test_a_worker_that_cannot_join_in_time_stops(started, tmp_path):
    job = write_job(tmp_path / "job.pkl", sleep_forever, str(tmp_path))
    supervisor = worker(started, tmp_path, job, peer_missing(), "--timeout", "4")
    status, took = exit_status_within(supervisor, 60)
    assert status == 1 and 4 <= took < 10
    assert ("nbreplica worker: error: the worker did not join its cluster within 4 s: some "
            "worker that TF_CONFIG lists was not started") in output(tmp_path)
    assert "Received: --timeout 4" in output(tmp_path)


@pytest.mark.timeout(180)
def test_a_taken_port_is_named(started, tmp_path):
    job = write_job(tmp_path / "job.pkl", sleep_forever, str(tmp_path))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        status = worker(started, tmp_path, job, tf_config.configs([address])[0]).wait(150)
    assert status == 1
    assert (f"nbreplica worker: error: this worker cannot listen at {address}, its address "
            "in TF_CONFIG: the port is in use (Could not start gRPC server)") in output(tmp_path)


@pytest.mark.timeout(180)
def test_a_result_that_cannot_be_written_is_written_elsewhere(started, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    job = write_job(tmp_path / "job.pkl", remove_then_return, str(folder))
    status = worker(started, tmp_path, job, single_worker(),
                    "--result", str(folder / "result.pkl")).wait(150)
    assert status == 1
    said = re.search(r"error: the result could not be written to (\S+) \(.*\); it was "
                     r"written to (\S+) instead: move it where it belongs\. Received: "
                     r"--result (\S+)", output(tmp_path))
    assert said, output(tmp_path)
    assert said[1] == said[3] == str(folder / "result.pkl")
    assert Path(said[2]).parent == tmp_path / "tmp" and read_value(Path(said[2])) == 42


@pytest.mark.timeout(300)
def test_a_collective_that_waits_for_a_hung_worker_times_out(started, tmp_path):
    job = write_job(tmp_path / "job.pkl", hang_in_worker_1, str(tmp_path))
    first, second = tf_config.local_configs(2)
    chief = worker(started, tmp_path, job, first, "--step-timeout", "3")
    hung = worker(started, tmp_path, job, second, "--step-timeout", "3")
    assert chief.wait(150) == 1
    assert ("nbreplica worker: error: a collective operation of worker 0 did not complete "
            "within 3 s: another worker hangs, has ended, or runs other steps. Received: "
            "--step-timeout 3") in output(tmp_path, 0)
    hung.send_signal(signal.SIGTERM)
    assert hung.wait(GRACE_PERIOD + 10) == 128 + signal.SIGTERM


@pytest.mark.parametrize("contents, flags, said", [
    pytest.param(b"garbage\n", [],
                 r"\S+/job.pkl is not a job file written by nbreplica.cluster.write_job: it "
                 r"cannot be read \(ValueError: invalid literal", id="garbage job file"),
    pytest.param(None, ["--result", "{tmp}/missing/result.pkl"],
                 r"the folder of the result file, \S+/missing, does not exist: create it, or "
                 r"name a file in an existing folder. Received: --result \S+/missing/result.pkl",
                 id="result in a missing folder"),
])
def test_a_bad_job_or_result_path_fails_before_joining(started, tmp_path, contents, flags,
                                                      said):
    """The peer never comes: a worker that tried to join would wait for it."""
    job = tmp_path / "job.pkl"
    if contents is None:
        write_job(job, sleep_forever, str(tmp_path))
    else:
        job.write_bytes(contents)
    arguments = [flag.format(tmp=tmp_path) for flag in flags]
    status, took = exit_status_within(worker(started, tmp_path, job, peer_missing(),
                                             *arguments), 60)
    assert status == 1 and took < 30
    assert re.search("nbreplica worker: error: " + said, output(tmp_path)), output(tmp_path)
    assert "Traceback" not in output(tmp_path)


@pytest.mark.parametrize("config, said", [
    ({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
      "task": {"type": "worker", "index": 2}},
     "TF_CONFIG's task index 2 is out of range: its cluster has 2 'worker' task(s), "
     "indices 0 to 1. Give every process its own index"),
    ({"cluster": {"worker": ["127.0.0.1:99999"]}, "task": {"type": "worker", "index": 0}},
     "TF_CONFIG's address '127.0.0.1:99999' has no valid port: write host:port with a "
     "port from 1 to 65535"),
], ids=["index out of range", "port 99999"])
def test_a_bad_tf_config_is_named(started, tmp_path, config, said):
    supervisor = worker(started, tmp_path, "cluster_jobs:chief_returns_its_index",
                        json.dumps(config))
    assert supervisor.wait(60) == 1
    assert f"nbreplica worker: error: {said}. Received: TF_CONFIG=" in output(tmp_path)


# --- launch ----------------------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how, said", [
    ("sys.exit", r"the function called sys.exit\(0\) in worker 0: a worker's function must "
                 r"return its result, or raise to fail"),
    ("os._exit", r"worker 0 \(pid \d+\) exited with status 0 but wrote no result: its "
                 r"function ended the process \(os._exit\?\) instead of returning"),
], ids=["sys.exit", "os._exit"])
def test_a_function_that_ends_its_worker_is_named(spawned, how, said):
    with pytest.raises(WorkerError, match=said):
        launch(exit_instead_of_returning, how, workers=1, timeout=200)
    assert gone_within(f"nbreplica-launch-{os.getpid()}-", 5) == []


def test_an_argument_that_cannot_be_pickled_is_named():
    for args, kwargs, name in (((threading.Lock(),), {}, r"args\[0\]"),
                               ((), {"lock": threading.Lock()}, "lock")):
        with pytest.raises(TypeError, match=rf"^{name} cannot be sent to the workers "
                           r"\(TypeError: cannot pickle '_thread.lock' object\).*Received: "
                           rf"{name}=<unlocked _thread.lock"):
            launch(sleep_forever, *args, workers=1, **kwargs)
    assert processes_naming(f"nbreplica-launch-{os.getpid()}-") == []


# --- The results store -----------------------------------------------------------------


def broken_store(tmp_path: Path, fault: str) -> Path:
    path = tmp_path / "results.sqlite"
    if fault == "directory":
        path.mkdir()
    elif fault == "under a file":
        path.write_text("a file, not a folder")
        path = path / "results.sqlite"
    elif fault == "damaged":
        path.write_bytes(b"these bytes are no SQLite database" * 100)
    else:
        ResultsStore(path).runs()  # creates the file, empty
    return path


STORE_FAULTS = {
    "directory": r"is a directory: pass a file's path, e.g. \S+results.sqlite/results.sqlite",
    "damaged": r"is damaged or not a results file \(file is not a database\): move it away",
    "full disk": r"cannot be written: its disk is full \(0 bytes free\): free some space",
    "under a file": r"cannot be created: \S+results.sqlite is no folder this process may "
                    r"write to",
}


@pytest.mark.parametrize("fault", STORE_FAULTS)
def test_a_sweep_reports_an_unusable_store_before_measuring(tmp_path, monkeypatch, fault):
    path = broken_store(tmp_path, fault)
    if fault == "full disk":
        monkeypatch.setattr(store_errors.shutil, "disk_usage", lambda _: _Usage(0))
    built = []
    x, y = np.zeros((64, 4), "float32"), np.zeros((64, 1), "float32")
    with pytest.raises(nbreplica.ResultsStoreError,
                       match=rf"^The results file {re.escape(str(path))} "
                             rf"{STORE_FAULTS[fault]}.*Received: results_path="):
        nbreplica.sweep(built.append, x, y, devices=(1, 2), batch_size=16, steps=1,
                        repeats=1, target_ci=None, results_path=path, progress=False)
    assert built == []


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


@pytest.mark.parametrize("fault", ["directory", "damaged"])
def test_loading_results_from_an_unusable_store_says_why(tmp_path, fault):
    path = broken_store(tmp_path, fault)
    for load in (nbreplica.load_results, nbreplica.SweepResult.load):
        with pytest.raises(nbreplica.ResultsStoreError, match=STORE_FAULTS[fault]):
            load(results_path=path)


def test_a_cell_sweep_reports_an_unusable_store_before_running(shell, tmp_path, monkeypatch):
    monkeypatch.setenv("NBREPLICA_RESULTS", str(broken_store(tmp_path, "damaged")))
    with capture_output() as captured:
        result = shell.run_cell("%%replicate --sweep 1,2\nran = True")
    assert isinstance(result.error_in_exec, UsageError)
    assert re.search(STORE_FAULTS["damaged"], str(result.error_in_exec))
    assert "ran" not in shell.user_ns and captured.outputs == []


def test_an_unknown_sweep_is_a_lookup_error_for_both_readers(tmp_path):
    path = broken_store(tmp_path, "empty")
    with pytest.raises(LookupError, match=r"No sweep called 'unknown' .*Received: sweep="):
        nbreplica.load_results("unknown", results_path=path)
    with pytest.raises(LookupError, match=r"No sweep called 'unknown' .*Received: name="):
        nbreplica.SweepResult.load("unknown", results_path=path)


# --- Arguments of the API, the magics and the environment -------------------------------


@pytest.mark.parametrize("indices", ["0,1", 3])
def test_use_devices_refuses_what_is_no_sequence_of_indices(indices):
    with pytest.raises(TypeError, match=r"Device indices must be a sequence of GPU indices "
                       rf"such as \[0, 1\].*Received: indices={indices!r}"):
        nbreplica.use_devices(indices)
    assert nbreplica.selected_devices() is None


@pytest.fixture
def shell():
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "nbreplica")
    yield ip
    ip.run_line_magic("unload_ext", "nbreplica")


def test_an_unclosed_quotation_mark_is_a_usage_error(shell):
    for run in (lambda: shell.run_cell_magic("replicate", "--name 'abc", "x = 1"),
                lambda: shell.run_line_magic("nbreplica_report", "'abc")):
        with pytest.raises(UsageError, match=r"cannot split its line into arguments \(No "
                           r"closing quotation\): close every quotation mark. Received: "):
            run()


def test_a_cell_that_does_not_compile_shows_no_summary(shell):
    with capture_output() as captured:
        result = shell.run_cell("%%replicate -n 2\nx = (")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert "SyntaxError" in captured.stdout + captured.stderr
    assert captured.outputs == []  # the summary would be a display


def test_a_malformed_fake_nvml_variable_is_a_warning_at_import():
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("NBREPLICA_")}
    done = subprocess.run([sys.executable, "-c", "import nbreplica; print('imported')"],
                          env={**environment, "NBREPLICA_FAKE_NVML": "abc"},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "imported"
    assert ("UserWarning: nbreplica ignores a variable of its environment: NBREPLICA_FAKE_NVML "
            "must be a whole number of devices >= 1. Received: NBREPLICA_FAKE_NVML='abc'"
            ) in done.stderr
    assert "Traceback" not in done.stderr

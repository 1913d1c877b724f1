"""Launches that go wrong end with a clear error, and with every worker gone."""

from __future__ import annotations

import socket
import time

import pytest
from cluster_jobs import (
    chief_returns_its_index,
    fail_in_worker_1,
    sleep_forever,
    train_more_steps_in_worker_1,
)

from worker_processes import ctrl_c_once_written, group_alive

from nbreplica.cluster import LaunchTimeout, WorkerError, launch, tf_config
from nbreplica.cluster.processes import WorkerGroup


@pytest.mark.timeout(240)
def test_a_crashing_worker_is_named_with_its_last_output(spawned, tmp_path):
    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+\) exited with status 1") as failed:
        launch(fail_in_worker_1, str(tmp_path), workers=2, timeout=200)
    assert failed.value.worker == 1
    assert "RuntimeError: worker 1 gives up on purpose" in str(failed.value)
    assert len(spawned) == 2


@pytest.mark.timeout(240)
def test_workers_that_run_different_step_counts_are_told_so(spawned):
    with pytest.raises(WorkerError, match="The workers fell out of step: every worker must "
                       "run the same steps"):
        launch(train_more_steps_in_worker_1, workers=2, timeout=200)


@pytest.mark.timeout(120)
def test_a_peer_that_never_connects_ends_at_the_timeout(spawned, monkeypatch):
    """The one worker started is told of a second that never comes."""
    real = tf_config.local_configs
    monkeypatch.setattr(tf_config, "local_configs", lambda count: real(count + 1)[:count])
    started = time.monotonic()
    with pytest.raises(LaunchTimeout, match=r"worker\(s\) 0 did not start and join the "
                       r"cluster within 8 s.*Received: timeout=8"):
        launch(chief_returns_its_index, workers=1, timeout=8)
    assert 8 <= time.monotonic() - started < 20


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_worker(spawned, tmp_path):
    ctrl_c_once_written(tmp_path / "pid-0")
    with pytest.raises(KeyboardInterrupt):
        launch(sleep_forever, str(tmp_path), workers=1, timeout=100)


@pytest.mark.timeout(120)
def test_a_port_taken_before_the_worker_binds_it_is_picked_again(spawned, monkeypatch,
                                                                 capsys):
    taken = socket.create_server(("127.0.0.1", 0))
    real = tf_config.free_ports
    calls = []

    def first_one_taken(count):
        calls.append(count)
        return [taken.getsockname()[1]] if len(calls) == 1 else real(count)

    monkeypatch.setattr(tf_config, "free_ports", first_one_taken)
    with taken:
        assert launch(chief_returns_its_index, workers=1, timeout=100) == [0]
    assert calls == [1, 1]
    assert "worker 0 of 1 trained" in capsys.readouterr().out
    assert len(spawned) == 2


def test_a_worker_that_cannot_start_leaves_none_running(tmp_path):
    started = []

    class Recorded(WorkerGroup):
        def end(self):
            started.extend(self.pids)
            super().end()

    with pytest.raises(FileNotFoundError):
        Recorded([["sleep", "60"], ["/no/such/program"]], [{}, {}], tmp_path)
    assert len(started) == 1 and not group_alive(started[0])

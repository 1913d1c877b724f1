"""``launch(..., backend="ray")`` on a Ray started on this machine with loopback
addresses only: the same training as local workers, the chief's output and model,
clear faults, and no worker process still running when a launch returns or raises."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from cluster_jobs import (
    assert_chiefs_model_came_back,
    assert_trained_like,
    chief_returns_its_index,
    fail_in_worker_1,
    sleep_forever,
    train_everything,
)
from ray_cluster import ray_workers_running, still_running
from worker_processes import ctrl_c_once_written, pids_written

from nbreplica.cluster import LaunchTimeout, RayBackend, WorkerError, launch, tf_config
from nbreplica.cluster.ray_launcher import end_processes


@pytest.fixture(scope="module")
def trained(local_ray, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-launch")
    results = launch(train_everything, str(folder), workers=2, backend="ray", timeout=240)
    return folder, results


@pytest.mark.timeout(300)
def test_two_ray_workers_on_loopback_train_like_mirrored_strategy(trained, reference):
    folder, results = trained
    assert [(r["index"], r["num_workers"], r["is_chief"]) for r in results] == [
        (0, 2, True), (1, 2, False)]
    for result in results:
        addresses = result["cluster"]["worker"]
        assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert_trained_like(results, *reference)
    assert still_running(pids_written(folder), within=0) == []
    assert ray_workers_running() == []


@pytest.mark.timeout(300)
def test_the_chiefs_model_comes_back_and_only_the_chief_writes(trained):
    folder, results = trained
    assert_chiefs_model_came_back(results)
    assert sorted(p.name for p in (folder / "worker-0").iterdir()) == [
        "checkpoint.keras", "model.keras", "template.weights.h5"]
    assert list((folder / "worker-1").iterdir()) == []


@pytest.mark.timeout(300)
def test_only_the_chiefs_output_shows(local_ray, capsys):
    assert launch(chief_returns_its_index, workers=2, backend="ray", timeout=240) == [0, 1]
    shown = capsys.readouterr().out
    assert "worker 0 of 2 trained, loss" in shown
    assert "worker 1 of 2" not in shown
    assert ray_workers_running() == []


@pytest.mark.timeout(300)
def test_a_failing_ray_worker_is_named_with_its_last_output(local_ray, tmp_path):
    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+\) failed; every worker "
                       "was stopped") as failed:
        launch(fail_in_worker_1, str(tmp_path), workers=2, backend="ray", timeout=240)
    assert failed.value.worker == 1
    assert "RuntimeError: worker 1 gives up on purpose" in str(failed.value)
    pids = pids_written(tmp_path)
    assert len(pids) == 2 and still_running(pids, within=0) == []
    assert ray_workers_running() == []


@pytest.mark.timeout(120)
def test_workers_ray_cannot_place_end_at_the_timeout(local_ray):
    started = time.monotonic()
    with pytest.raises(LaunchTimeout, match=r"Ray could not place 2 workers with "
                       r"\{'CPU': 2\} each within 5 s .*Received: timeout=5"):
        launch(chief_returns_its_index, workers=2, timeout=5,
               backend=RayBackend(cpus_per_worker=2))
    assert time.monotonic() - started < 30
    groups = local_ray.util.placement_group_table().values()
    assert {group["state"] for group in groups} <= {"REMOVED"}
    assert ray_workers_running() == []


@pytest.mark.timeout(120)
def test_a_peer_that_never_connects_ends_at_the_timeout(local_ray, monkeypatch):
    """The one worker placed is told of a second that never comes."""
    real = tf_config.configs
    monkeypatch.setattr(tf_config, "configs",
                        lambda addresses: real([*addresses, "127.0.0.1:9"])[:len(addresses)])
    with pytest.raises(LaunchTimeout, match=r"worker\(s\) 0 did not start and join the "
                       r"cluster within 20 s.*Received: timeout=20"):
        launch(chief_returns_its_index, workers=1, backend="ray", timeout=20)
    assert ray_workers_running() == []


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_ray_worker(local_ray, tmp_path):
    ctrl_c_once_written(tmp_path / "pid-0")
    with pytest.raises(KeyboardInterrupt):
        launch(sleep_forever, str(tmp_path), workers=1, backend="ray", timeout=100)
    # Killed processes may take a while to be reaped on a machine running two test suites.
    assert still_running(pids_written(tmp_path), within=15) == []
    assert ray_workers_running() == []


def test_an_actor_process_that_outlives_the_grace_period_is_killed():
    # What a killed actor's process is to a machine too busy to end it in time:
    # a process that ignores SIGTERM and sleeps on.
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print(flush=True); time.sleep(600)"],
                                stdout=subprocess.PIPE)
    try:
        stubborn.stdout.readline()  # it ignores SIGTERM from here on
        started = time.monotonic()
        end_processes([stubborn.pid], grace=0.5)
        assert stubborn.wait(timeout=10) == -9
        assert time.monotonic() - started < 10
    finally:
        stubborn.kill()
        stubborn.wait()


DRIVER = """\
import os, sys
import ray
from cluster_jobs import sleep_forever
from nbreplica.cluster import launch
ray.init(address=sys.argv[1], runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
launch(sleep_forever, sys.argv[2], workers=1, backend="ray", timeout=200)
"""


@pytest.mark.timeout(300)
def test_ray_ends_the_workers_of_a_driver_that_was_killed(local_ray, tmp_path):
    """An actor's fate is its owner's: Ray kills a dead driver's actors."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    environment = {key: value for key, value in os.environ.items()
                   if key != "NBREPLICA_EMULATE_GPUS"}
    environment["PYTHONPATH"] = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    address = local_ray.get_runtime_context().gcs_address
    with (tmp_path / "driver.log").open("wb") as log, subprocess.Popen(
            [sys.executable, str(script), address, str(tmp_path)], env=environment,
            stdout=log, stderr=subprocess.STDOUT) as driver:
        deadline = time.monotonic() + 200
        while not pids_written(tmp_path) and driver.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()
        driver.kill()
    assert still_running(pids_written(tmp_path), within=60) == []
    assert ray_workers_running() == []


def test_ray_backend_settings_are_checked():
    with pytest.raises(ValueError, match=r"cpus_per_worker must be .*Received: "
                       r"cpus_per_worker=-1"):
        RayBackend(cpus_per_worker=-1)
    with pytest.raises(ValueError, match=r"Received: gpus_per_worker=nan"):
        RayBackend(gpus_per_worker=float("nan"))
    with pytest.raises(ValueError, match=r"placement must be one of .*Received: "
                       r"placement='EVERYWHERE'"):
        RayBackend(placement="EVERYWHERE")
    with pytest.raises(ValueError, match=r"A worker needs CPUs or GPUs.*Received: "
                       r"cpus_per_worker=0, gpus_per_worker=0"):
        RayBackend(cpus_per_worker=0)
    assert RayBackend(gpus_per_worker=1).bundle == {"CPU": 1, "GPU": 1}


def test_without_ray_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'nbreplica\[ray\]'"):
        launch(print, backend="ray")

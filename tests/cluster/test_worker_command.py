"""The entry point for cluster managers: ``nbreplica worker JOB`` and
``python -m nbreplica.cluster JOB`` in processes whose ``TF_CONFIG`` was set for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cluster_jobs import chief_returns_its_index

import nbreplica
from nbreplica.cluster import tf_config, write_job
from nbreplica.cluster.job import read_job, read_value
from nbreplica.cluster.launcher import worker_environment
from nbreplica.cluster.processes import WorkerGroup


@pytest.mark.timeout(240)
def test_two_processes_started_by_hand_train_as_one_cluster(tmp_path, spawned):
    offset = 40

    def defined_here() -> int:  # sent by value, as a notebook's function is
        return chief_returns_its_index() + offset

    job = write_job(tmp_path / "job.pkl", defined_here)
    result = tmp_path / "result.pkl"
    commands = [[sys.executable, "-m", "nbreplica", "worker", str(job), "--result", str(result)],
                [sys.executable, "-m", "nbreplica.cluster", str(job), "--result", str(result)]]
    environments = [worker_environment(config) for config in tf_config.local_configs(2)]
    with WorkerGroup(commands, environments, tmp_path) as group:
        spawned.extend(group.pids)
        group.wait(ready=[], timeout=None)
    assert read_value(result) == 40  # the chief's value; the other worker wrote none
    assert "worker 0 of 2 trained" in (tmp_path / "worker-0.log").read_text()
    assert "worker 1 of 2 trained" in (tmp_path / "worker-1.log").read_text()


def test_a_worker_without_tf_config_says_what_it_needs(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run([sys.executable, "-m", "nbreplica", "worker", "cluster_jobs:fit"],
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "nbreplica worker: error: TF_CONFIG is not set" in done.stderr


def test_a_job_is_a_job_file_or_an_importable_function(tmp_path):
    assert read_job("cluster_jobs:chief_returns_its_index").fn is chief_returns_its_index
    with pytest.raises(nbreplica.NbreplicaError, match=r"module:function.*Received: 'nowhere'"):
        read_job("nowhere")
    with pytest.raises(nbreplica.NbreplicaError, match=r"Received: 'cluster_jobs:absent'"):
        read_job("cluster_jobs:absent")
    (tmp_path / "other.pkl").write_bytes(b"\x80\x04K\x03.")  # pickle of 3
    with pytest.raises(nbreplica.NbreplicaError, match="holds no job.*Received: a int"):
        read_job(str(tmp_path / "other.pkl"))
    with pytest.raises(TypeError, match=r"fn must be a function.*Received: fn=3"):
        write_job(tmp_path / "job.pkl", 3)

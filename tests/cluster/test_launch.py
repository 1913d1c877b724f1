"""``nbreplica.cluster.launch`` with two local workers: where each stands, training
equal to a single-process MirroredStrategy, chief-only saving, the chief's model
brought back, and the Keras correction still needed upstream."""

from __future__ import annotations

import json

import keras
import pytest
from cluster_jobs import assert_chiefs_model_came_back, assert_trained_like, train_everything
from worker_processes import group_alive, pids_written

import nbreplica
from nbreplica.cluster import launch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("launch")
    results = launch(train_everything, str(folder), workers=2, timeout=240)
    return folder, results


@pytest.mark.timeout(300)
def test_each_worker_knows_its_place_in_a_loopback_cluster(trained):
    folder, results = trained
    assert [(r["index"], r["num_workers"], r["is_chief"]) for r in results] == [
        (0, 2, True), (1, 2, False)]
    assert [r["multi_worker"] for r in results] == [True, True]
    assert [r["replicas"] for r in results] == [2, 2]
    addresses = results[0]["cluster"]["worker"]
    assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert [pid for pid in pids_written(folder) if group_alive(pid)] == []


@pytest.mark.timeout(300)
def test_two_workers_train_like_mirrored_strategy_on_two_devices(trained, reference):
    _, results = trained
    assert_trained_like(results, *reference)


@pytest.mark.timeout(300)
def test_the_chiefs_trained_model_comes_back(trained):
    _, results = trained
    assert_chiefs_model_came_back(results)


@pytest.mark.timeout(300)
def test_only_the_chief_writes_models(trained):
    folder, _ = trained
    chief = sorted(p.name for p in (folder / "worker-0").iterdir())
    assert chief == ["checkpoint.keras", "model.keras", "template.weights.h5"]
    assert list((folder / "worker-1").iterdir()) == []
    assert keras.models.load_model(folder / "worker-0" / "model.keras").count_params() > 0


@pytest.mark.timeout(300)
def test_keras_still_needs_the_multi_worker_correction(trained):
    """Fails the day Keras trains across workers by itself (keras-team/keras#20585):
    then nbreplica/_keras_compat/multiworker_fit.py can go for that Keras version."""
    _, results = trained
    watch = results[0]["watch"]
    assert "Attempt to convert a value (PerReplica" in watch["symbolic_build"]
    assert "Invalid reduction dimension" in watch["reduce_per_replica"]


def test_bad_arguments_say_what_was_received():
    with pytest.raises(ValueError, match=r"workers must be .*Received: workers=0"):
        launch(print, workers=0)
    with pytest.raises(ValueError, match=r"backend must be .*Received: backend='slurm'"):
        launch(print, backend="slurm")
    with pytest.raises(ValueError, match=r"timeout must be .*Received: timeout=-1"):
        launch(print, timeout=-1)
    with pytest.raises(TypeError, match=r"fn must be a function.*Received: fn=3"):
        launch(3)


def test_context_outside_a_worker_says_where_it_works():
    with pytest.raises(nbreplica.NbreplicaError, match="only inside a worker process"):
        nbreplica.cluster.context()


def test_tf_config_is_read_and_checked():
    from nbreplica.cluster.tf_config import read_task

    config = {"cluster": {"chief": ["10.0.0.1:1"], "worker": ["10.0.0.2:1", "10.0.0.3:1"]},
              "task": {"type": "worker", "index": 1}}
    task = read_task(json.dumps(config))
    assert (task.index, task.num_workers, task.is_chief) == (2, 3, False)
    with pytest.raises(nbreplica.NbreplicaError, match="TF_CONFIG is not set"):
        read_task("")
    with pytest.raises(nbreplica.NbreplicaError, match=r"Received: TF_CONFIG='\{\"task\"'"):
        read_task('{"task"')

"""``%%replicate --workers 2``: a self-contained cell trains in two worker processes,
local or on Ray; the chief's output shows and its values come back."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from ray_cluster import ray_workers_running

import nbreplica
from nbreplica.bench.store import RESULTS_ENV_VAR

CELL = """
import threading
import keras, numpy as np, nbreplica.cluster
here = nbreplica.cluster.context()
print(f"worker {here.index} of {here.num_workers} says hello")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="tiny")
model.compile(optimizer="sgd", loss="mse")
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
history = model.fit(x, x.sum(axis=1), batch_size=16, epochs=3, verbose=0)
answer = 42
lock = threading.Lock()
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend, where", [
    ("local", "workers on one machine (local backend)"),
    ("ray", "workers (ray backend)"),
])
def test_a_cell_trains_in_two_workers_and_the_chiefs_values_come_back(shell, backend, where,
                                                                      request):
    # `spawned` records and checks local workers; Ray's are checked at the end.
    request.getfixturevalue("spawned" if backend == "local" else "local_ray")
    shell.reset(new_session=False)
    with capture_output() as captured:
        result = shell.run_cell(f"%%replicate --workers 2 --backend {backend}\n{CELL}")
    assert result.success, captured.stdout
    assert "worker 0 of 2 says hello" in captured.stdout
    assert "worker 1 of 2" not in captured.stdout  # only the chief's output shows
    namespace = shell.user_ns
    assert isinstance(namespace["model"], keras.Model)
    assert namespace["answer"] == 42 and "lock" not in namespace
    losses = namespace["history"].history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert np.all(np.isfinite(namespace["model"].get_weights()[0]))
    summary = captured.outputs[-1].data["text/plain"]
    assert f"%%replicate: 2 {where}" in summary
    assert "training 'tiny':" in summary and "samples/s" in summary
    assert "not brought back: lock: a lock cannot be pickled" in summary
    assert ray_workers_running() == []


@pytest.mark.timeout(300)
def test_ray_resources_per_worker(shell, local_ray):
    shell.reset(new_session=False)
    with capture_output() as captured:
        result = shell.run_cell(
            "%%replicate --workers 2 --backend ray --cpus-per-worker 0.5 --gpus-per-worker 0\n"
            "import ray\n"
            "assigned = ray.get_runtime_context().get_assigned_resources()\n")
    assert result.success, captured.stdout
    assert shell.user_ns["assigned"] == {"CPU": 0.5}
    assert "%%replicate: 2 workers (ray backend)" in captured.outputs[-1].data["text/plain"]
    assert ray_workers_running() == []


SWEPT_CELL = """
import keras, numpy as np
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="tiny")
model.compile(optimizer="sgd", loss="mse")
x = np.zeros((256, 4), "float32")
model.fit(x, x[:, 0], batch_size=32, epochs=1, verbose=0)
"""


@pytest.mark.timeout(300)
def test_a_sweep_over_worker_counts(shell, spawned, tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV_VAR, str(tmp_path / "results.sqlite"))
    shell.reset(new_session=False)
    with capture_output() as captured:
        result = shell.run_cell(
            f"%%replicate --sweep 1,2 --workers --repeats 1 --target-ci 0 --name cell-workers "
            "--quiet\n"
            f"{SWEPT_CELL}")
    assert result.success, captured.stderr
    runs = nbreplica.load_results("cell-workers")
    assert list(zip(runs["strategy"], runs["devices"])) == [
        ("single", 1), ("multiworker", 1), ("multiworker", 2)]
    assert (runs["samples_per_s"] > 0).all() and (runs["global_batch_size"] == 32).all()
    assert runs["device_names"].iloc[2].count("workers on one machine") == 2
    assert len(spawned) == 3 and isinstance(shell.user_ns["model"], keras.Model)


@pytest.mark.parametrize("line, message", [
    ("--workers 2 -n 2", "-n does not combine with --workers.*Received: -n"),
    ("--workers 2 --sweep 1,2", r"Received: --workers 2 with --sweep"),
    ("--workers", r"Received: --workers without --sweep"),
    ("--sweep 1,2 --workers --backend ray", r"--backend ray needs --workers N and no "
     r"--sweep.*Received: --backend ray with --sweep"),
    ("--backend ray", r"Received: --backend ray with no --workers N"),
    ("--workers 2 --gpus-per-worker 1", r"--gpus-per-worker sets what Ray reserves: it needs "
     r"--backend ray. Received: --gpus-per-worker 1 with --backend local"),
    ("--workers 2 --backend ray --cpus-per-worker 0", r"A worker needs CPUs or GPUs.*"
     r"Received: --cpus-per-worker 0 --gpus-per-worker 0"),
    ("--workers 2 --backend ray --cpus-per-worker many", r"argument --cpus-per-worker: "
     r"expected a number >= 0. Received: --cpus-per-worker many"),
])
def test_worker_options_that_do_not_fit(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("replicate", line, "pass")

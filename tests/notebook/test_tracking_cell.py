"""%%replicate --monitor --log-dir / --mlflow and --sweep --mlflow: the cell's GPU metrics
in TensorBoard event files and MLflow, and its sweep in MLflow (8 emulated GPUs standing
in for 8 simulated NVML GPUs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import nbreplica
from nbreplica.bench.store import RESULTS_ENV_VAR
from nbreplica.testing import fake_nvml, plausible_gpus
from nbreplica.tracking.series import METRICS

sys.path.insert(0, str(Path(__file__).parents[1] / "tracking"))
from tracking_helpers import metric_histories, scalars  # noqa: E402

SETUP = """
import keras, numpy as np
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(2)],
                         name="cell_model")
model.compile("sgd", "mse")
x = np.random.default_rng(0).standard_normal((256, 8), dtype=np.float32)
y = x[:, :2]
"""
#: Steps slow enough for samples to fall in each.
FIT = ("import time\n"
       "slow = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: time.sleep(0.02))\n"
       "model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[slow])")


@pytest.fixture(scope="module")
def mlflow_client(tmp_path_factory):
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield mlflow.MlflowClient()


@pytest.fixture
def experiment(mlflow_client, tmp_path, monkeypatch):
    name = tmp_path.name
    experiment_id = mlflow_client.create_experiment(
        name, artifact_location=(tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    return experiment_id


@pytest.fixture(autouse=True)
def fresh(shell, tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV_VAR, str(tmp_path / "results.sqlite"))
    shell.reset(new_session=False)
    assert shell.run_cell(SETUP).success
    nbreplica.use_devices(None)


def replicate(shell, line: str, body: str):
    with capture_output():
        result = shell.run_cell(f"%%replicate {line}\n{body}")
    assert result.success, result.error_in_exec or result.error_before_exec


def tags(gpus, start="system/"):
    return {f"{start}{kind}gpu_{i}_{metric}" for i in gpus for metric in METRICS
            for kind in ("", "epoch_")}


def test_monitor_writes_the_cells_gpus_to_tensorboard(shell, tmp_path):
    with fake_nvml(*plausible_gpus(8)):
        replicate(shell, f"--gpus 2,5 --monitor --log-dir {tmp_path / 'logs'}", FIT)
    logged = scalars(tmp_path / "logs" / "gpus")
    assert set(logged) == tags([2, 5])
    assert [step for step, _ in logged["system/epoch_gpu_5_utilization_percentage"]] == [0, 1]


def test_monitor_logs_the_cells_gpus_to_the_active_mlflow_run(shell, mlflow_client, experiment):
    import mlflow

    with fake_nvml(*plausible_gpus(8)), mlflow.start_run() as run:
        replicate(shell, "-n 2 --strategy mirrored --monitor --mlflow",
                  SETUP.replace('name="cell_model")', 'name="mirrored_model")') + FIT)
    assert set(metric_histories(mlflow_client, run.info.run_id)) == tags([0, 1])


def test_a_cell_sweep_is_logged_to_mlflow(shell, mlflow_client, experiment):
    replicate(shell, "--sweep 1,2 --repeats 2 --target-ci 0 --name cell-sweep --mlflow",
              "model.fit(x, y, batch_size=64, epochs=1, verbose=0)")
    runs = mlflow_client.search_runs([experiment])
    parent = next(run for run in runs if run.info.run_name == "cell-sweep")
    assert parent.data.tags["emulated"] == "true"
    children = [run for run in runs
                if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(run.data.params["devices"] for run in children) == ["1", "2"]


@pytest.mark.parametrize(("line", "message"), [
    ("--log-dir logs", "--log-dir writes the GPU metrics of one cell's fit calls: it needs "
                       "--monitor and no --sweep. Received: --log-dir logs without --monitor"),
    ("--monitor --sweep 1,2 --log-dir logs", "Received: --log-dir logs with --sweep"),
    ("--mlflow", "--mlflow logs a --sweep, or with --monitor the cell's GPU metrics: add one "
                 "of them. Received: --mlflow without --sweep or --monitor"),
])
def test_tracking_options_that_do_not_fit_are_refused(shell, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shell.run_cell_magic("replicate", line, "pass")

"""%%replicate --monitor --log-dir / --mlflow and --sweep --mlflow: the cell's GPU metrics
in TensorBoard event files and MLflow, and its sweep in MLflow (8 emulated GPUs standing
in for 8 simulated NVML GPUs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from test_magics import clean  # noqa: F401  (a fresh namespace and results file per test)

from nbreplica.testing import fake_nvml, plausible_gpus

sys.path.insert(0, str(Path(__file__).parents[1] / "tracking"))
from tracking_helpers import (experiment, expected_tags, metric_histories,  # noqa: E402, F401
                              mlflow_store, scalars)

#: Steps slow enough for samples to fall in each.
FIT = ("import time\n"
       "slow = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: time.sleep(0.02))\n"
       "model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[slow])")


def replicate(shell, line: str, body: str):
    with capture_output():
        result = shell.run_cell(f"%%replicate {line}\n{body}")
    assert result.success, result.error_in_exec or result.error_before_exec


def test_monitor_writes_the_cells_gpus_to_tensorboard(shell, tmp_path):
    with fake_nvml(*plausible_gpus(8)):
        replicate(shell, f"--gpus 2,5 --monitor --log-dir {tmp_path / 'logs'}",
                  "model = build()\n" + FIT)
    logged = scalars(tmp_path / "logs" / "gpus")
    assert set(logged) == expected_tags([2, 5])
    assert [step for step, _ in logged["system/epoch_gpu_5_utilization_percentage"]] == [0, 1]


def test_monitor_logs_the_cells_gpus_to_the_active_mlflow_run(shell, experiment):
    import mlflow

    client, _ = experiment
    with fake_nvml(*plausible_gpus(8)), mlflow.start_run() as run:
        replicate(shell, "-n 2 --strategy mirrored --monitor --mlflow",
                  "model = build('mirrored')\n" + FIT)
    assert set(metric_histories(client, run.info.run_id)) == expected_tags([0, 1])


def test_a_cell_sweep_is_logged_to_mlflow(shell, experiment):
    client, experiment_id = experiment
    replicate(shell, "--sweep 1,2 --repeats 2 --target-ci 0 --name cell-sweep --mlflow",
              "model = build()\nmodel.fit(x, y, batch_size=50, epochs=1, verbose=0)")
    runs = client.search_runs([experiment_id])
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

"""Sweeps into MLflow (nbreplica.sweep(..., mlflow=True), nbreplica sweep --mlflow), read
back with MLflow's client from a local SQLite store."""

from __future__ import annotations

import pytest
from tracking_helpers import data, small_model

import nbreplica
from nbreplica.bench.to_mlflow import POINT_METRICS
from nbreplica.cli import main

QUICK = dict(steps=3, warmup_steps=1, progress=False, target_ci=None)


def child_runs(client, experiment_id, parent_id):
    return client.search_runs([experiment_id],
                              f"tags.mlflow.parentRunId = '{parent_id}'")


def the_parent(client, experiment_id):
    runs = client.search_runs([experiment_id], "tags.sweep_id != ''")
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1
    return parents[0]


def test_a_sweep_logs_a_parent_run_with_one_child_run_per_point(experiment, tmp_path):
    client, experiment_id = experiment
    x, y = data()
    result = nbreplica.sweep(small_model, x, y, devices=(1, 2), batch_size=32, repeats=2,
                             name="tracked", mlflow=True, **QUICK)
    parent = the_parent(client, experiment_id)
    assert parent.info.run_name == "tracked" and parent.info.status == "FINISHED"
    assert parent.data.tags["emulated"] == "true"
    assert parent.data.tags["sweep_id"] == result.sweep_id
    assert parent.data.params["device_counts"] == "1,2"
    assert parent.data.params["strategies"] == "single,split"
    assert parent.data.params["model"] == "small" and parent.data.params["points"] == "4"
    children = child_runs(client, experiment_id, parent.info.run_id)
    by_point = {(run.data.params["strategy"], int(run.data.params["devices"])): run
                for run in children}
    assert set(by_point) == {("single", 1), ("split", 2)} and len(children) == 2
    for row in result.frame.itertuples():
        run = by_point[(row.strategy, row.devices)]
        assert run.data.tags["emulated"] == "true"
        assert run.data.params["global_batch_size"] == "32"
        assert run.data.params["repeats"] == "2"
        for name in ("samples_per_s", "samples_per_s_low", "samples_per_s_high", "speedup"):
            assert run.data.metrics[name] == pytest.approx(getattr(row, name))
        assert set(run.data.metrics) <= set(POINT_METRICS)
    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "scaling.png", "summary.csv", "runs.csv",
            "speedup_table.txt"} <= artifacts
    table = client.download_artifacts(parent.info.run_id, "speedup_table.txt", str(tmp_path))
    assert open(table).read() == result.table()


def test_the_sweep_command_logs_to_mlflow_with_the_mlflow_flag(experiment, tmp_path, capsys):
    client, experiment_id = experiment
    status = main(["sweep", "--model", "mlp", "--devices", "1,2", "--emulate", "8",
                   "--repeats", "2", "--steps", "2", "--warmup-steps", "1", "--target-ci", "0",
                   "--samples", "512", "--batch-size", "64", "--name", "from-cli",
                   "--out", str(tmp_path / "out"), "--mlflow"])
    assert status == 0, capsys.readouterr().err
    parent = the_parent(client, experiment_id)
    assert parent.info.run_name == "from-cli" and parent.data.params["model"] == "mlp"
    assert len(child_runs(client, experiment_id, parent.info.run_id)) == 2


def test_an_interrupted_sweep_logs_what_it_measured(experiment, monkeypatch):
    from nbreplica.bench import runner

    client, experiment_id = experiment
    measured = []
    real = runner.measure_point

    def interrupt_the_third(point, *args):
        if len(measured) == 2:
            raise KeyboardInterrupt
        measured.append(point)
        return real(point, *args)

    monkeypatch.setattr(runner, "measure_point", interrupt_the_third)
    x, y = data()
    with pytest.raises(nbreplica.SweepInterrupted) as stopped:
        nbreplica.sweep(small_model, x, y, devices=(1, 2), batch_size=32, repeats=2,
                        mlflow=True, **QUICK)
    parent = the_parent(client, experiment_id)
    assert parent.data.tags["interrupted"] == "true"
    assert parent.data.params["points"] == str(len(stopped.value.result.runs)) == "2"

"""The ``nbreplica forecast`` command: in its own process on a machine without GPUs,
and in this one for its options and errors."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import pandas as pd
import pytest

from nbreplica.cli import main
from start_up_lines import start_up_lines_in


def tiny_model() -> keras.Model:
    """A ``module:function`` model for ``--model test_forecast_cli:tiny_model``."""
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="tiny")
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_on_a_machine_without_gpus_the_command_emulates_what_it_traces_over(tmp_path):
    # No NBREPLICA_EMULATE_GPUS: the command makes the two devices it traces over.
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NBREPLICA_EMULATE_GPUS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(
        [sys.executable, "-m", "nbreplica", "forecast", "--model", "mlp", "--hardware",
         "dgx-a100", "--devices", "2,4", "--batch-size", "32", "--out", str(tmp_path)],
        env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Forecast: mlp on dgx-a100, strategy='split'")
    assert max(len(line) for line in lines[:-1]) <= 100  # all but the files' paths
    assert "  devices  step (ms)  samples/s  speedup  efficiency  bound by (forecast)" in lines
    assert "Forecast step parts on dgx-a100 (ms per step, before overlap):" in lines
    assert start_up_lines_in(done.stderr) == []
    frame = pd.read_csv(tmp_path / "forecast.csv")
    assert list(frame["devices"]) == [1, 2, 4] and list(frame["per_device_batch"]) == [32] * 3
    assert (tmp_path / "forecast.png").stat().st_size > 0
    assert lines[-1] == f"Forecast files: {tmp_path / 'forecast.csv'}, {tmp_path / 'forecast.png'}"


def test_a_module_function_model_and_replicates_options_reach_the_forecast(capsys):
    assert main(["forecast", "--model", "test_forecast_cli:tiny_model", "--hardware",
                 "8xL4-pcie4", "--devices", "2", "--batch-size", "8", "--scaling", "strong",
                 "--strategy", "split", "--no-cpu-merge", "--cpu-relocation"]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()).startswith(
        "Forecast: tiny on 8xL4-pcie4, strategy='split' (cpu_merge=False, "
        "cpu_relocation=True), strong scaling")
    table = out[out.index("Forecast step parts"):].splitlines()
    assert [line.split()[:2] for line in table[2:4]] == [["1", "8"], ["2", "4"]]


def test_a_measured_step_time_anchors_the_one_gpu_step(capsys):
    assert main(["forecast", "--model", "test_forecast_cli:tiny_model", "--devices", "2",
                 "--batch-size", "8", "--strategy", "mirrored", "--step-time", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "strategy='mirrored'" in out and "anchored to the measured one-device step of 0.02 s" in out
    assert "        1       20.0" in out  # the one-GPU row: 20 ms


def test_an_input_pipeline_bounds_the_step_on_the_hosts_cores(capsys):
    assert main(["forecast", "--model", "test_forecast_cli:tiny_model", "--devices", "8",
                 "--batch-size", "64", "--hardware", "dgx1-v100", "--strategy", "mirrored",
                 "--input-cpu-seconds", "0.005"]) == 0
    out = capsys.readouterr().out
    assert "input pipeline on 5 host cores per GPU" in out
    assert "input pipeline: 0.005 CPU core-seconds per sample" in out


def test_list_hardware_prints_the_catalogue(capsys):
    assert main(["forecast", "--list-hardware"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Machines a forecast knows (--hardware NAME):"
    assert lines[1].split() == ["name", "description"]
    assert [line.split()[0] for line in lines[2:]] == [
        "8xK80-pcie3", "dgx1-p100", "dgx1-v100", "dgx-a100", "dgx-h100", "8xL4-pcie4",
        "4xRTX4090-pcie4"]


@pytest.mark.parametrize("arguments, message", [
    (["--hardware", "dgx-9000"],
     "hardware must be a nbreplica.Hardware or the name of a machine in the catalogue: "
     "8xK80-pcie3, dgx1-p100, dgx1-v100, dgx-a100, dgx-h100, 8xL4-pcie4, 4xRTX4090-pcie4. "
     "Received: hardware='dgx-9000'"),
    (["--model", "resnet"],
     "--model must be a built-in model (cnn, mlp) or module:function. Received: --model='resnet'"),
    (["--model", "test_forecast_cli:absent"],
     "--model must be a built-in model or an importable function named module:function"),
    (["--model", "test_forecast_cli:tiny_model", "--hardware", "4xRTX4090-pcie4",
      "--devices", "8"], "devices must be between 1 and the 4 GPUs of 4xRTX4090-pcie4"),
])
def test_errors_say_what_is_wrong_without_a_traceback(capsys, arguments, message):
    assert main(["forecast", *arguments]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"nbreplica forecast: error: {message}")
    assert "Traceback" not in error

"""The ``nbreplica sweep`` command, end to end in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import tensorflow as tf

import nbreplica
from nbreplica import cli
from nbreplica.cli import main
from nbreplica.gpus import emulation
from nbreplica.bench.report import SIMULATED_NOTE
from nbreplica.bench.result import SweepResult
from nbreplica.bench.terminal import wrapped
from nbreplica.testing import FakeGpu, fake_nvml
from start_up_lines import start_up_lines_in
from sweep_helpers import STEADY, stored_runs


def command(tmp_path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nbreplica", "sweep", "--model", "mlp",
            "--devices", "1,2", "--emulate", "8", "--samples", "512", "--batch-size", "64",
            "--out", str(tmp_path / "out"), "--results", str(tmp_path / "results.sqlite"),
            *extra]


@pytest.fixture
def environment():
    """The command's environment, without the test suite's emulation: --emulate does it."""
    return {k: v for k, v in os.environ.items()
            if k not in ("NBREPLICA_EMULATE_GPUS", "TF_CPP_MIN_LOG_LEVEL")}


def succeeded(tmp_path, environment, *extra: str) -> subprocess.CompletedProcess:
    """The command with ``extra`` arguments, run to its successful end."""
    done = subprocess.run(command(tmp_path, *extra), env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def table_lines(stdout: str) -> list[str]:
    """The command's table, from its heading line on."""
    lines = stdout.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("strategy")):]


def test_sweep_command_writes_a_report(tmp_path, environment):
    done = succeeded(tmp_path, environment, "--repeats", "2", "--steps", "3",
                     "--target-ci", "0")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Emulated devices: TensorFlow logical devices sharing one CPU")
    table = table_lines(done.stdout)
    assert table[0].split()[:4] == ["strategy", "devices", "samples/s", "speedup"]
    assert table[1].split()[:2] == ["single", "1"] and table[2].split()[:2] == ["split", "2"]
    before_the_files = lines[:lines.index("") if "" in lines else len(lines)]
    assert max(len(line) for line in before_the_files) <= 100
    out = tmp_path / "out"
    assert f"Report: {out / 'report.html'}" in lines
    for name in ("report.html", "summary.csv", "runs.csv", "scaling.png"):
        assert (out / name).stat().st_size > 0
    assert "Sweep of 2 device counts on emulated GPUs: 3/4 |" in done.stderr
    assert "split on 2 devices, repeat 2 · about" in done.stderr
    assert start_up_lines_in(done.stderr) == []
    stored = nbreplica.load_results("mlp-strong-b64", results_path=tmp_path / "results.sqlite")
    assert len(stored) == 4 and stored["emulated"].all()
    assert stored["target_ci"].isna().all()


def test_an_adaptive_sweep_command_adds_repeats_until_the_target(tmp_path, environment):
    # Repeats of 3 steps: after the first 3 rounds, rounds are added, each with its
    # baseline, until the interval is within 500% (the budget is far off). The
    # progress bar shows the widest interval from the third round on.
    done = succeeded(tmp_path, environment, "--steps", "3", "--target-ci", "5",
                     "--budget", "240")
    lines = table_lines(done.stdout)
    assert lines[2].split()[:2] == ["split", "2"]
    assert "widest interval split×2 " in done.stderr and "(target 500%)" in done.stderr
    stored = nbreplica.load_results(results_path=tmp_path / "results.sqlite")
    rounds = int(stored["repeat"].max())
    assert rounds >= 3
    assert list(stored["repeat"]) == [r for r in range(1, rounds + 1) for _ in range(2)]
    assert done.stderr.rstrip().endswith(
        f"Measured {2 * rounds} points; every speedup interval within 500%]")
    assert (stored["target_ci"] == 5.0).all()


def test_interrupted_command_keeps_and_reports_what_it_measured(tmp_path, environment):
    process = subprocess.Popen(command(tmp_path, "--repeats", "100", "--steps", "3",
                                       "--target-ci", "0"),
                               env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        for line in process.stderr:  # each redraw of the bar ends in "\r", read as a line
            assert time.monotonic() < deadline
            if ": 3/200 |" in line:
                break
        process.send_signal(signal.SIGINT)
        # Writing the report takes a while on a machine running two test suites.
        stdout, stderr = process.communicate(timeout=300)
    finally:  # a failed wait must not leave the sweep running
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "nbreplica.load_results(" in stderr
    assert "Report:" in stdout
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Interrupted:" in page
    stored = nbreplica.load_results(results_path=tmp_path / "results.sqlite")
    assert 3 <= len(stored) < 200


def test_verbose_shows_tensorflows_start_up_lines(tmp_path, environment):
    done = succeeded(tmp_path, environment, "--repeats", "1", "--steps", "1",
                     "--target-ci", "0", "--verbose")
    assert start_up_lines_in(done.stderr)


def test_an_unknown_model_is_named_with_the_choices(tmp_path, capsys):
    assert main(["sweep", "--model", "resnet", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "nbreplica sweep: error: there is no built-in model 'resnet'; choose one of "
        "cnn, mlp. Received: --model='resnet'\n")


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    status = main(["sweep", "--devices", "1,16", "--emulate", "8",
                   "--out", str(tmp_path / "out"), "--results", str(tmp_path / "r.sqlite")])
    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("nbreplica sweep: error: devices asks for 16 devices")
    assert "Received: devices=(1, 16)" in error
    assert not (tmp_path / "out").exists()


def test_without_gpus_the_command_says_emulate_before_starting_tensorflow(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(emulation, "_emulated_count", 0)  # a CPU machine's process
    monkeypatch.setattr(cli._tensorflow, "load", lambda **_: pytest.fail("TensorFlow started"))
    with fake_nvml(init_error="driver_not_loaded"):
        assert main(["sweep", "--devices", "1,2,4", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "nbreplica sweep: error: this machine has no GPU to sweep over (NVIDIA driver not "
        "loaded (simulated NVML driver from nbreplica.testing)) and none is emulated: add "
        "--emulate N to emulate N GPUs with logical CPU devices, e.g. --emulate 4. "
        "Received: no --emulate\n")


def test_memory_read_from_the_simulated_driver_is_said_above_the_table(tmp_path, capsys):
    samples = pd.DataFrame({"sweep_id": ["s1"], "strategy": ["split"], "devices": [2],
                            "repeat": [1], "time": [0.0], "device": [0],
                            "metric": ["memory_used"], "value": [1.0]})
    result = SweepResult(stored_runs(STEADY, steps=50, step_cv=0.05), samples, name="s",
                         sweep_id="s1", results_path=tmp_path / "r.sqlite", planned_points=9)
    with fake_nvml(FakeGpu()):
        cli._report(result, str(tmp_path / "out"))
    shown = capsys.readouterr().out
    assert shown.startswith(wrapped(SIMULATED_NOTE) + "\n" + result.table())


def test_a_sweep_command_takes_shares(tmp_path, capsys):
    status = main(["sweep", "--devices", "1,2", "--emulate", "8", "--shares", "3,1",
                   "--repeats", "1", "--steps", "3", "--warmup-steps", "1", "--target-ci", "0",
                   "--samples", "512", "--out", str(tmp_path / "out"),
                   "--results", str(tmp_path / "r.sqlite")])
    assert status == 0, capsys.readouterr().err
    assert "Each batch split by shares: split on 2 devices given 75% · 25%" in (
        capsys.readouterr().out.replace("\n  ", " "))


def test_emulating_another_count_after_start_up_is_an_error(tmp_path, capsys):
    tf.constant(0)  # TensorFlow's runtime has started: its devices are fixed
    assert main(["sweep", "--emulate", "3", "--out", str(tmp_path / "out")]) == 1
    assert "Received: n=3" in capsys.readouterr().err


def test_help_says_what_scaling_and_warm_up_steps_mean(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert ("--scaling {strong,weak} strong: every device count trains the same global "
            "batch (--batch-size), split across the devices") in shown
    assert "weak: every device trains --batch-size, so the global batch grows" in shown
    assert ("--warmup-steps N untimed training steps before each point's timed ones: the "
            "first traces the step function") in shown


@pytest.mark.parametrize(("arguments", "message"), [
    (["--devices", "1,two"], "Received: --devices 1,two"),
    (["--target-ci", "tight"], "argument --target-ci: expected a relative interval width "
                               "such as 0.10, or 0 for a fixed number of repeats. "
                               "Received: --target-ci tight"),
    (["--target-ci", "-0.1"], "Received: --target-ci -0.1"),
    (["--budget", "0"], "argument --budget: expected a number of seconds > 0. "
                        "Received: --budget 0"),
    (["--shares", "2,-1"], "argument --shares: expected even, auto, memory or "
                           "comma-separated numbers > 0, one per device. "
                           "Received: --shares 2,-1"),
])
def test_bad_arguments_are_usage_errors(capsys, arguments, message):
    with pytest.raises(SystemExit) as caught:
        main(["sweep", *arguments])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err

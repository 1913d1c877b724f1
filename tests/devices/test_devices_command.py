"""``nbreplica devices``: the terminal view, ``--json`` and ``--watch``, against the
fake driver."""

import json
import os
import pwd
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nbreplica import cli
from nbreplica.devices.owners import UNKNOWN, process_command, process_user
from nbreplica.testing import GIB, FakeGpu, FakeProcess, fake_nvml, this_process
from nbreplica.testing.plausible import mixed_gpus

GONE = 99_999_999  # above any pid_max: no such process

ME = pwd.getpwuid(os.getuid()).pw_name


def machine():
    return fake_nvml(
        FakeGpu(name="NVIDIA H100 80GB HBM3", memory_total=80 * GIB, memory_used=30 * GIB,
                utilization_gpu=87, temperature=66, power_draw=512.4, power_limit=700.0,
                processes=[this_process(3 * GIB), FakeProcess(GONE, "trainer", 25 * GIB)]),
        FakeGpu(name="NVIDIA H100 80GB HBM3", memory_total=80 * GIB,
                unsupported={"temperature", "power_draw"}, forbidden={"processes"}),
        FakeGpu(lost_at=0.0),
    )


def test_one_line_per_gpu_and_one_per_process(capsys):
    with machine():
        assert cli.main(["devices"]) == 0
    title, first, mine, other, second, hidden, lost = capsys.readouterr().out.splitlines()
    assert "NVML ready: 3 GPUs" in title and "simulated" in title
    assert first == ("[0] NVIDIA H100 80GB HBM3 |  66 °C |  87 % |   30.0 / 80.0 GiB | "
                     "512/700 W | simulated")
    assert mine.split()[:4] == [str(os.getpid()), ME, "3.0", "GiB"]
    assert mine.endswith("<- this process") and "pytest" in mine
    assert other.split() == [str(GONE), UNKNOWN, "25.0", "GiB", "trainer"]
    assert second == ("[1] NVIDIA H100 80GB HBM3 |    n/a |   0 % |    0.0 / 80.0 GiB | "
                      "    n/a W | simulated")
    assert hidden == "    processes: n/a (the driver does not tell)"
    assert lost.startswith("[2] ") and lost.endswith("| lost: the GPU fell off the bus")


def test_json_has_one_object_per_gpu(capsys):
    with machine():
        assert cli.main(["devices", "--json"]) == 0
    first, second, lost = json.loads(capsys.readouterr().out)
    assert [first["index"], second["index"], lost["index"]] == [0, 1, 2]
    assert (first["memory_used"], first["memory_total"]) == (30 * GIB, 80 * GIB)
    assert first["memory_free"] == 50 * GIB and first["utilization_gpu"] == 87
    mine, other = first["processes"]
    assert (mine["pid"], mine["gpu_memory"], mine["user"]) == (os.getpid(), 3 * GIB, ME)
    assert "pytest" in mine["command"]
    assert (other["user"], other["command"], other["name"]) == (UNKNOWN, None, "trainer")
    assert second["temperature"] is None and second["processes"] is None
    assert lost["lost"] is True and lost["memory_used"] is None


def test_watch_refreshes_until_the_count(capsys):
    with fake_nvml(FakeGpu()):
        began = time.monotonic()
        assert cli.main(["devices", "--watch", "0.05", "--count", "3"]) == 0
        elapsed = time.monotonic() - began
    frames = [line for line in capsys.readouterr().out.splitlines() if "NVML ready" in line]
    assert len(frames) == 3 and 0.1 <= elapsed < 5


def test_watch_json_prints_one_list_per_line(capsys):
    with fake_nvml(FakeGpu(), FakeGpu()):
        assert cli.main(["devices", "--json", "--watch", "0.01", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [len(json.loads(line)) for line in lines] == [2, 2]


def test_without_a_driver_one_clear_line(capsys):
    with fake_nvml(init_error="driver_not_loaded"):
        assert cli.main(["devices"]) == cli.EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["nbreplica devices: no GPU to show: NVIDIA driver not loaded "
                                "(simulated NVML driver from nbreplica.testing)"]


@pytest.mark.parametrize("watch", [[], ["--watch", "0.01", "--count", "2"]])
def test_json_without_a_driver_is_an_empty_list_and_a_failure(capsys, watch):
    with fake_nvml(init_error="driver_not_loaded"):
        assert cli.main(["devices", "--json", *watch]) == cli.EXIT_ERROR
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert err.startswith("nbreplica devices: no GPU to show: NVIDIA driver not loaded")


def test_bad_options_are_named(capsys):
    assert cli.main(["devices", "--count", "2"]) == cli.EXIT_ERROR
    assert "--count needs --watch. Received: --count 2" in capsys.readouterr().err
    for option in (["--watch", "0"], ["--watch", "x"], ["--watch", "1", "--count", "0"]):
        with pytest.raises(SystemExit):
            cli.main(["devices", *option])
        assert "Received: " in capsys.readouterr().err


def test_ctrl_c_ends_watch_cleanly():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NBREPLICA_")}
    watch = subprocess.Popen(
        [sys.executable, "-m", "nbreplica", "devices", "--watch", "0.1"],
        env={**environment, "NBREPLICA_FAKE_NVML": "2"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "NVML ready: 2 GPUs" in watch.stdout.readline()  # the first refresh is out
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=60)
    finally:
        watch.kill()
    assert watch.returncode == 0 and err == ""


def test_process_owner_and_command_from_proc():
    assert process_user(os.getpid()) == ME
    executable = open("/proc/self/cmdline").read().split("\0")[0]
    assert process_command(os.getpid()).split()[0] == executable
    assert (process_user(GONE), process_command(GONE)) == (UNKNOWN, None)


def test_shares_show_each_gpus_part_of_a_batch(capsys):
    with fake_nvml(*mixed_gpus()):
        assert cli.main(["devices", "--shares", "memory"]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
        assert [line.rsplit("| ", 1)[1] for line in lines] == [
            "share 50%", "share 35%", "share 8%", "share 6%"]  # 72, 50, 12, 9 GiB free
        assert cli.main(["devices", "--shares", "auto", "--json"]) == 0
        shares = [gpu["share"] for gpu in json.loads(capsys.readouterr().out)]
    a100, t4 = 6912 * 1410, 2560 * 1590
    assert shares == pytest.approx([a100, a100, t4, t4] / np.float64(2 * (a100 + t4)))


def test_a_gpu_nvml_says_nothing_about_has_no_share(capsys):
    with machine():  # GPU 2 is lost
        assert cli.main(["devices", "--shares", "auto"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.rsplit("| ", 1)[1] for line in lines] == [
        "share 50%", "share 50%", "share n/a"]

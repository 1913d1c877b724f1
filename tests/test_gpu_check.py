"""``benchmarks/gpu_check.py`` against the fake driver and a fake ``nvidia-smi``."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbreplica.gpus import emulation
from nbreplica.testing import GIB, FakeGpu, fake_nvml

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
UUID = "GPU-fa4e0000-0000-4000-8000-000000000000"
# What nvidia-smi prints for GPU() below, in the script's field order.
AGREEING = f"0, NVIDIA H100 80GB HBM3, {UUID}, 81920, 30720, 51200, 87, 41, 66, 512.25, 700.00"


def GPU(**overrides):
    return FakeGpu(**{**dict(name="NVIDIA H100 80GB HBM3", memory_total=80 * GIB,
                             memory_used=30 * GIB, utilization_gpu=87, utilization_memory=41,
                             temperature=66, power_draw=512.25, power_limit=700.0),
                      **overrides})


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.setattr(emulation, "_emulated_count", 0)
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def nvidia_smi(tmp_path, monkeypatch):
    """Put an ``nvidia-smi`` printing ``lines`` (and exiting with ``code``) on PATH."""
    monkeypatch.setenv("PATH", str(tmp_path))

    def install(*lines, code=0):
        script = tmp_path / "nvidia-smi"
        script.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines)
                          + f"exit {code}\n")
        script.chmod(0o755)

    return install


def test_agreeing_fields_and_the_samplers_cost(gpu_check, nvidia_smi, capsys):
    nvidia_smi(AGREEING, AGREEING.replace("0, ", "1, ", 1).replace(UUID, UUID[:-1] + "1"))
    with fake_nvml(GPU(), GPU()):
        assert gpu_check.main(["--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert len(rows) == 2 * len(gpu_check.FIELDS) and all(row[-1] == "True" for row in rows)
    assert ["0", "memory.used", "30720.0", "30720", "±64", "True"] in rows
    assert ["1", "uuid", UUID[:-1] + "1", UUID[:-1] + "1", "exact", "True"] in rows
    assert "sampler at 10 Hz for 0.5 s:" in out and "(5 due)" in out and "% of one core" in out
    assert out.rstrip().endswith("every field agrees")


def test_a_disagreeing_field_is_shown_and_fails(gpu_check, nvidia_smi, capsys):
    nvidia_smi(AGREEING.replace(", 66, ", ", 80, "))
    with fake_nvml(GPU(unsupported={"power_limit"})):
        assert gpu_check.main(["--seconds", "0.2"]) == gpu_check.EXIT_DISAGREES
    out = capsys.readouterr().out
    (temperature,) = [line for line in out.splitlines() if "temperature.gpu" in line]
    assert temperature.split() == ["0", "temperature.gpu", "66", "80", "±2", "False"]
    (limit,) = [line for line in out.splitlines() if "enforced.power.limit" in line]
    assert limit.split()[-1] == "False"  # nbreplica has none, nvidia-smi says 700
    assert out.rstrip().endswith("2 field(s) disagree")


def test_a_field_neither_side_reports_agrees(gpu_check, nvidia_smi, capsys):
    nvidia_smi(AGREEING.replace(", 66, ", ", [N/A], "))
    with fake_nvml(GPU(unsupported={"temperature"})):
        assert gpu_check.main(["--seconds", "0.1"]) == 0


@pytest.mark.parametrize("situation, line", [
    ("no driver", "gpu_check: no NVIDIA GPU to check: NVIDIA driver not loaded"),
    ("no nvidia-smi", "gpu_check: nvidia-smi is not on PATH (it comes with the NVIDIA driver)"),
    ("failing nvidia-smi", "gpu_check: nvidia-smi failed (exit 9): NVIDIA-SMI has failed"),
])
def test_what_cannot_be_checked_is_said_in_one_line(gpu_check, nvidia_smi, capsys,
                                                     situation, line):
    if situation == "failing nvidia-smi":
        nvidia_smi("NVIDIA-SMI has failed", code=9)
    with fake_nvml(*([] if situation == "no driver" else [GPU()]),
                   init_error="driver_not_loaded" if situation == "no driver" else None):
        assert gpu_check.main([]) == gpu_check.EXIT_CANNOT_CHECK
    (printed,) = capsys.readouterr().out.splitlines()
    assert printed.startswith(line)


def test_it_runs_with_only_nvml_bindings_and_pandas(nvidia_smi):
    nvidia_smi(AGREEING)
    blocked = ("tensorflow", "keras", "IPython", "ipywidgets", "matplotlib", "scipy", "tqdm")
    code = (
        "import runpy, sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, Absent())\n"
        f"sys.argv = [{str(SCRIPT)!r}, '--seconds', '0.2']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NBREPLICA_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**environment, "NBREPLICA_FAKE_NVML": "1"}, timeout=120)
    assert done.returncode in (0, 1), done.stderr  # the plausible GPU's values drift
    assert "memory.used" in done.stdout and "sampler at 10 Hz for 0.2 s" in done.stdout

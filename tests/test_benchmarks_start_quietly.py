"""Every benchmark starts TensorFlow as nbreplica does: loading one prints none of
TensorFlow's C++ start-up lines."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from start_up_lines import start_up_lines_in

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
#: Runs a benchmark's module body (its imports and set-up), not its ``main``.
LOAD = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); runpy.run_path(sys.argv[2]); "
        "print('tensorflow' in sys.modules)")
#: Benchmarks that read NVML alone.
WITHOUT_TENSORFLOW = {"bench_nvml_driver"}


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.stem)
def test_a_benchmark_starts_quietly(script):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NBREPLICA_EMULATE_GPUS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", LOAD, str(BENCHMARKS), str(script)],
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert start_up_lines_in(done.stderr) == [], done.stderr
    assert done.stdout.split() == [str(script.stem not in WITHOUT_TENSORFLOW)]

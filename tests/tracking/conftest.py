"""Fixtures of the tracking tests: a local MLflow SQLite store (no server, no network)
with one experiment per test (from tracking_helpers), simulated GPUs that each report
values of their own, and a private results file."""

from __future__ import annotations

import pytest
from tracking_helpers import (MEMORY_USED, POWER_DRAW, TEMPERATURE, UTILIZATION,
                              experiment, mlflow_store)  # noqa: F401  (fixtures)

from nbreplica.bench.store import RESULTS_ENV_VAR
from nbreplica.testing import FakeGpu, fake_nvml



@pytest.fixture
def gpus():
    """Eight simulated GPUs under the real pynvml bindings."""
    with fake_nvml(*(FakeGpu(utilization_gpu=UTILIZATION[i], memory_used=MEMORY_USED[i],
                             power_draw=POWER_DRAW[i], temperature=TEMPERATURE[i],
                             uuid=f"GPU-{i}{i}{i}{i}-test") for i in range(8))) as driver:
        yield driver


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Every test stores its sweeps in its own results file."""
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv(RESULTS_ENV_VAR, str(path))
    return path

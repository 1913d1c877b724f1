"""Fixtures of the tracking tests: a local MLflow SQLite store (no server, no network),
one experiment per test, and simulated GPUs that each report values of their own."""

from __future__ import annotations

import pytest

from nbreplica.bench.store import RESULTS_ENV_VAR
from nbreplica.testing import GIB, FakeGpu, fake_nvml

#: What simulated GPU ``i`` reports: values no other GPU reports.
UTILIZATION = {i: 10 + i for i in range(8)}
MEMORY_USED = {i: (i + 1) * GIB for i in range(8)}
POWER_DRAW = {i: 100.0 + 10 * i for i in range(8)}
TEMPERATURE = {i: 40 + i for i in range(8)}


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """A SQLite tracking store in a temporary folder, the tracking URI for the session."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield folder


@pytest.fixture
def experiment(mlflow_store, tmp_path, monkeypatch):
    """A fresh MLflow experiment of this test (artifacts under ``tmp_path``), made the
    current one through ``MLFLOW_EXPERIMENT_NAME``; returns ``(client, experiment id)``."""
    import mlflow

    client = mlflow.MlflowClient()
    name = f"{tmp_path.name}-{id(tmp_path)}"
    experiment_id = client.create_experiment(
        name, artifact_location=(tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    return client, experiment_id


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

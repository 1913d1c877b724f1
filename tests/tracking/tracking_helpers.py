"""A small model, its data, a local MLflow store (fixtures), and readers of what was
logged (a unique module name: no clash with other test directories' helpers)."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from nbreplica.testing import GIB
from nbreplica.tracking.series import METRICS

FEATURES = 8
SAMPLES = 256
BATCH = 16  # 16 steps per epoch

#: What simulated GPU ``i`` reports: values no other GPU reports.
UTILIZATION = {i: 10 + i for i in range(8)}
MEMORY_USED = {i: (i + 1) * GIB for i in range(8)}
POWER_DRAW = {i: 100.0 + 10 * i for i in range(8)}
TEMPERATURE = {i: 40 + i for i in range(8)}


def small_model(name: str = "small") -> keras.Model:
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2)], name=name)
    model.compile("sgd", "mse")
    return model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32),
            rng.standard_normal((SAMPLES, 2), dtype=np.float32))


class SlowSteps(keras.callbacks.Callback):
    """Makes each training step last at least ``seconds``, so that samples fall in it."""

    def __init__(self, seconds: float = 0.01) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def expected_tags(gpus, start: str = "system/") -> set[str]:
    """Every metric name a monitor of ``gpus`` logs, per step and per epoch."""
    return {f"{start}{kind}gpu_{index}_{metric}" for index in gpus for metric in METRICS
            for kind in ("", "epoch_")}


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of ``log_dir``, read by TensorBoard's own event
    reader, as (step, value) pairs per tag; asserts that TensorBoard files them under
    its scalars plugin."""
    reader = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    reader.Reload()
    found = {}
    for tag in reader.Tags()["tensors"]:
        assert reader.SummaryMetadata(tag).plugin_data.plugin_name == "scalars", tag
        found[tag] = [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
                      for event in reader.Tensors(tag)]
    return found


def metric_histories(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric of an MLflow run as (step, value) pairs, read back by its client."""
    run = client.get_run(run_id)
    return {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
            for key in run.data.metrics}


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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


def train_with_a_monitor(log_dir: str) -> int:
    """A cluster worker's job: train under the worker's strategy with a GpuMonitor of
    one simulated GPU, the one of the worker's own index; returns that index."""
    import nbreplica

    index = nbreplica.cluster.context().index
    with nbreplica.cluster.context().strategy.scope():
        model = small_model()
    x, y = data()
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[
        SlowSteps(0.02), nbreplica.GpuMonitor(log_dir, gpus=[index], interval=0.02)])
    return index

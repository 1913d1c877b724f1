"""nbreplica.GpuMonitor on 8 emulated GPUs (tests/conftest.py) standing in for 8
simulated NVML GPUs: what reaches TensorBoard's event files and an MLflow run."""

from __future__ import annotations

import math
import re
import time

import keras
import pytest
import tensorflow as tf
from tracking_helpers import (BATCH, MEMORY_USED, POWER_DRAW, SAMPLES, TEMPERATURE,
                              UTILIZATION, SlowSteps, data, expected_tags, metric_histories,
                              scalars, small_model, wait_until)

import nbreplica
from nbreplica.cluster import current
from nbreplica.cluster.current import WorkerContext
from nbreplica.testing import GIB
from nbreplica.devices.cuda_visible import nvml_index
from nbreplica.tracking.gpus import model_gpus

STEPS_PER_EPOCH = SAMPLES // BATCH


def fit(model, monitor, epochs=2, *extra):
    x, y = data()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0,
              callbacks=[SlowSteps(), monitor, *extra])


def test_a_replicated_model_logs_only_its_gpus_per_step_and_epoch_to_tensorboard(
        gpus, tmp_path):
    parallel = nbreplica.replicate(small_model(), gpus=[2, 5])
    parallel.compile("sgd", "mse")
    monitor = nbreplica.GpuMonitor(log_dir=tmp_path / "logs", interval=0.02)
    fit(parallel, monitor)
    assert monitor.sampled_gpus == (2, 5)
    logged = scalars(tmp_path / "logs" / "gpus")
    assert set(logged) == expected_tags([2, 5])  # nothing of GPUs 0, 1, 3, 4, 6, 7
    for index in (2, 5):
        steps = logged[f"system/gpu_{index}_utilization_percentage"]
        assert len({step for step, _ in steps}) >= 3
        assert {step for step, _ in steps} <= set(range(2 * STEPS_PER_EPOCH))
        assert {value for _, value in steps} == {UTILIZATION[index]}
        assert [step for step, _ in logged[f"system/epoch_gpu_{index}_temperature_celsius"]
                ] == [0, 1]
        memory = logged[f"system/gpu_{index}_memory_usage_megabytes"][0][1]
        assert memory == pytest.approx(MEMORY_USED[index] / 1e6, rel=1e-6)
        assert logged[f"system/gpu_{index}_memory_usage_percentage"][0][1] == pytest.approx(
            100 * MEMORY_USED[index] / (40 * GIB), rel=1e-6)
        assert logged[f"system/epoch_gpu_{index}_power_usage_watts"][0][1] == pytest.approx(
            POWER_DRAW[index])
        assert logged[f"system/gpu_{index}_power_usage_percentage"][0][1] == pytest.approx(
            100 * POWER_DRAW[index] / 400)
        assert logged[f"system/gpu_{index}_temperature_celsius"][0][1] == TEMPERATURE[index]
    assert not monitor.sampler.running


def test_metrics_go_to_the_active_mlflow_run_as_system_metrics(gpus, experiment):
    import mlflow

    client, _ = experiment
    parallel = nbreplica.replicate(small_model(), gpus=[1, 3, 6])
    parallel.compile("sgd", "mse")
    with mlflow.start_run() as run:
        monitor = nbreplica.GpuMonitor(mlflow=True, interval=0.02)
        fit(parallel, monitor, 1)
        assert client.get_run(run.info.run_id).info.status == "RUNNING"  # the user's run
    assert monitor.run_id == run.info.run_id
    logged = metric_histories(client, run.info.run_id)
    assert set(logged) == expected_tags([1, 3, 6])
    steps = logged["system/gpu_6_utilization_percentage"]
    assert len(steps) >= 3 and {v for _, v in steps} == {UTILIZATION[6]}
    assert logged["system/epoch_gpu_1_memory_usage_megabytes"] == [
        (0, pytest.approx(MEMORY_USED[1] / 1e6))]


def test_without_an_active_run_each_fit_gets_a_run_of_its_own_that_it_ends(gpus, experiment):
    import mlflow

    client, experiment_id = experiment
    model = small_model("named")
    monitor = nbreplica.GpuMonitor(mlflow=True, gpus=[4], interval=0.02)
    fit(model, monitor, 1)
    first = monitor.run_id
    fit(model, monitor, 1)
    assert mlflow.active_run() is None and monitor.run_id != first
    for run_id in (first, monitor.run_id):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.run_name == "named"
        assert run.info.experiment_id == experiment_id
        assert set(metric_histories(client, run_id)) == expected_tags([4])


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C in the middle of an epoch, after a slow step that samples fall in."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            time.sleep(0.3)
            raise KeyboardInterrupt


def test_a_fit_interrupted_mid_epoch_keeps_what_was_logged(gpus, experiment, tmp_path):
    client, _ = experiment
    model = small_model()
    monitor = nbreplica.GpuMonitor(tmp_path / "logs", mlflow=True, gpus=[0, 7], interval=0.02)
    with pytest.raises(KeyboardInterrupt):
        fit(model, monitor, 3, InterruptAt(1, 5))
    # Keras called no on_train_end: the monitor sees by itself that its fit ended.
    assert wait_until(lambda: not monitor.sampler.running)
    interrupted_at = STEPS_PER_EPOCH + 5
    for logged in (scalars(tmp_path / "logs" / "gpus"), metric_histories(client, monitor.run_id)):
        assert set(logged) == expected_tags([0, 7])
        steps = {step for step, _ in logged["system/gpu_7_power_usage_watts"]}
        assert max(steps) == interrupted_at and len(steps) >= 3
        assert [step for step, _ in logged["system/epoch_gpu_0_utilization_percentage"]] == [0, 1]
    killed = monitor.run_id
    assert client.get_run(killed).info.status == "KILLED"
    fit(model, monitor, 1)  # the same monitor serves the next fit, in a run of its own
    assert monitor.run_id != killed and client.get_run(killed).info.status == "KILLED"
    assert client.get_run(monitor.run_id).info.status == "FINISHED"


def test_a_worker_of_a_cluster_names_its_index(gpus, tmp_path, monkeypatch):
    monkeypatch.setattr(current, "_current", WorkerContext(1, 2, False, None))
    monitor = nbreplica.GpuMonitor(tmp_path / "logs", gpus=[3], interval=0.02)
    fit(small_model(), monitor, 1)
    assert set(scalars(tmp_path / "logs" / "gpus")) == expected_tags([3], "system/worker_1/")


def test_which_gpus_a_model_trains_on():
    template = small_model()
    assert model_gpus(nbreplica.replicate(template, gpus=[6, 0, 3])) == [6, 0, 3]
    strategy = tf.distribute.MirroredStrategy(
        ["/device:CPU:2", "/device:CPU:5"],
        cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        mirrored = small_model()
    assert model_gpus(mirrored) == [1, 4]  # emulated GPU i is /device:CPU:i+1
    assert model_gpus(template) == []  # on the host CPU: no GPU


def test_a_model_on_no_gpu_logs_nothing_and_says_so(gpus, tmp_path):
    monitor = nbreplica.GpuMonitor(tmp_path / "logs", interval=0.02)
    with pytest.warns(RuntimeWarning, match="'small' trains on no GPU, so nothing is logged"):
        fit(small_model(), monitor, 1)
    assert scalars(tmp_path / "logs" / "gpus") == {}


def test_without_nvml_the_monitor_says_why_nothing_is_logged(tmp_path):
    parallel = nbreplica.replicate(small_model(), gpus=2)
    parallel.compile("sgd", "mse")
    monitor = nbreplica.GpuMonitor(tmp_path / "logs", interval=0.02)
    with pytest.warns(RuntimeWarning, match=r"NVML cannot read GPUs \[0, 1\] \(.+\), so "
                                            "nothing is logged"):
        fit(parallel, monitor, 1)
    assert scalars(tmp_path / "logs" / "gpus") == {}


def test_cuda_visible_devices_maps_tensorflows_gpus_to_nvmls(gpus):
    assert nvml_index(1, {}) == 1
    assert [nvml_index(i, {"CUDA_VISIBLE_DEVICES": "5,2"}) for i in range(3)] == [5, 2, None]
    assert nvml_index(0, {"CUDA_VISIBLE_DEVICES": "GPU-3333-test,4"}) == 3
    assert nvml_index(0, {"CUDA_VISIBLE_DEVICES": "GPU-"}) is None  # not one GPU's
    assert nvml_index(0, {"CUDA_VISIBLE_DEVICES": ""}) is None


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "GpuMonitor writes to TensorBoard event files (log_dir=...) or to an MLflow run "
         "(mlflow=True): give at least one. Received: log_dir=None, mlflow=False"),
    ({"log_dir": "logs", "gpus": "01"}, "gpus must be a sequence of NVML GPU indices >= 0. "
                                        "Received: gpus='01'"),
    ({"log_dir": "logs", "gpus": [0, -1]}, "Received: gpus=[0, -1]"),
    ({"log_dir": "logs", "interval": 0}, "interval must be a number of seconds > 0. "
                                         "Received: interval=0"),
])
def test_bad_arguments_are_refused_when_the_monitor_is_made(arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        nbreplica.GpuMonitor(**arguments)


def test_epoch_means_average_the_samples_of_each_epoch():
    from nbreplica.devices.records import DeviceStats
    from nbreplica.tracking.series import Means

    means = Means("system/epoch_")
    assert means.add(0, [DeviceStats(2, "g", utilization_gpu=10)], 1.0) == []
    assert means.add(0, [DeviceStats(2, "g", utilization_gpu=20)], 2.0) == []
    done = means.add(1, [DeviceStats(2, "g", utilization_gpu=90, temperature=50)], 3.0)
    assert [(p.name, p.value, p.step, p.wall_time) for p in done] == [
        ("system/epoch_gpu_2_utilization_percentage", 15.0, 0, 2.0)]
    assert {(p.name, p.value, p.step) for p in means.pop()} == {
        ("system/epoch_gpu_2_utilization_percentage", 90.0, 1),
        ("system/epoch_gpu_2_temperature_celsius", 50.0, 1)}
    assert means.pop() == [] and not math.isnan(done[0].value)


@pytest.mark.timeout(300)
def test_each_worker_of_a_cluster_logs_its_own_gpus_with_its_index(tmp_path, monkeypatch):
    from tracking_helpers import train_with_a_monitor

    monkeypatch.setenv("NBREPLICA_FAKE_NVML", "2")  # in the workers: simulated GPUs 0, 1
    assert nbreplica.cluster.launch(train_with_a_monitor, str(tmp_path / "logs"), workers=2,
                                    timeout=240) == [0, 1]
    logged = scalars(tmp_path / "logs" / "gpus")  # both workers' event files
    assert set(logged) == (expected_tags([0], "system/worker_0/")
                           | expected_tags([1], "system/worker_1/"))

"""``GpuMonitor``: the GPUs a model trains on, logged to TensorBoard and MLflow."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import keras

from nbreplica._checks import is_number, is_whole
from nbreplica.devices import Sampler, nvml
from nbreplica.tracking.gpus import model_gpus, worker_index
from nbreplica.tracking.mlflow_runs import RunWriter, require_mlflow
from nbreplica.tracking.monitoring import FitWatch, Monitoring, Writer
from nbreplica.tracking.series import prefix
from nbreplica.tracking.tensorboard import EventWriter

_MLFLOW = "GpuMonitor(mlflow=True)"


class GpuMonitor(keras.callbacks.Callback):
    """A Keras callback that samples the GPUs the model trains on while it trains and
    logs their utilization, memory, power and temperature, aligned to steps and epochs.

    ::

        monitor = nbreplica.GpuMonitor(log_dir="logs", mlflow=True)
        parallel.fit(x, y, epochs=3, callbacks=[monitor])

    Only the model's GPUs are sampled, by NVML index: a replicated model's replicas'
    GPUs, a model built under a ``tf.distribute`` strategy the strategy's GPUs of this
    process, any other model TensorFlow's first GPU (see
    :mod:`nbreplica.tracking.gpus`; ``CUDA_VISIBLE_DEVICES`` is taken into account).
    NVML is read every ``interval`` seconds in a background thread (a
    :class:`~nbreplica.Sampler`); the samples taken during each training step are
    averaged into one value per GPU and metric at that step, and those of each epoch
    at that epoch. Names are MLflow's system-metric names:
    ``system/gpu_0_utilization_percentage``, ``..._memory_usage_megabytes``,
    ``..._memory_usage_percentage``, ``..._power_usage_watts``,
    ``..._power_usage_percentage``, ``..._temperature_celsius``, per step, and
    ``system/epoch_gpu_0_...`` per epoch; a worker of a :mod:`nbreplica.cluster` job
    logs its own GPUs as ``system/worker_<index>/gpu_...``. What a GPU does not report
    is not logged (emulated GPUs report nothing without the simulated driver).

    What was measured is written every second and at every epoch's end, and stays
    written if ``fit`` stops on an error or an interrupt: the monitor sees, within one
    ``interval``, that its ``fit`` ended, and stops.

    Args:
        log_dir: write TensorBoard event files to ``<log_dir>/gpus`` (TensorFlow writes
            them, so no ``tensorboard`` package is needed; view them with
            ``tensorboard --logdir log_dir``, from ``nbreplica[tensorboard]``).
        mlflow: log to the active MLflow run as system metrics (needs
            ``nbreplica[mlflow]``). With no active run, the monitor creates one named
            after the model in the current experiment for each ``fit`` and ends it
            when ``fit`` ends (``KILLED`` if it was interrupted); :attr:`run_id` names it.
        gpus: the NVML indices to sample instead of the model's GPUs.
        interval: seconds between samples (default: 0.1, 10 per second).

    Raises:
        ValueError: neither ``log_dir`` nor ``mlflow`` is given, or a bad ``gpus`` or
            ``interval``.
        ImportError: ``mlflow=True`` without MLflow installed.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *, mlflow: bool = False,
                 gpus: Sequence[int] | None = None, interval: float = 0.1) -> None:
        if log_dir is None and not mlflow:
            raise ValueError(
                "GpuMonitor writes to TensorBoard event files (log_dir=...) or to an MLflow "
                "run (mlflow=True): give at least one. Received: log_dir=None, mlflow=False")
        _check_gpus(gpus)
        if not is_number(interval) or not interval > 0:
            raise ValueError(
                f"interval must be a number of seconds > 0. Received: interval={interval!r}")
        if mlflow:
            require_mlflow(_MLFLOW)
        super().__init__()
        self.log_dir = log_dir
        self.mlflow = bool(mlflow)
        self.gpus = None if gpus is None else tuple(int(index) for index in gpus)
        self.interval = float(interval)
        self._monitoring: Monitoring | None = None
        self._run_id: str | None = None

    @property
    def sampled_gpus(self) -> tuple[int, ...]:
        """The NVML indices the latest ``fit`` sampled (empty before the first)."""
        return () if self._monitoring is None else self._monitoring.gpus

    @property
    def sampler(self) -> Sampler | None:
        """The latest ``fit``'s :class:`~nbreplica.Sampler` (its raw samples:
        ``to_frame()``, ``peak_memory()``); ``None`` before the first ``fit``."""
        return None if self._monitoring is None else self._monitoring.sampler

    @property
    def run_id(self) -> str | None:
        """The MLflow run the latest ``fit`` logged to; ``None`` without ``mlflow``."""
        return self._run_id

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._finish(interrupted=True)  # a fit that stopped before a sample noticed
        gpus = list(self.gpus) if self.gpus is not None else model_gpus(self.model)
        if not gpus:
            warnings.warn(f"GpuMonitor: {self.model.name!r} trains on no GPU, so nothing "
                          "is logged.", RuntimeWarning, stacklevel=2)
        elif not nvml.read_devices(gpus):
            warnings.warn(f"GpuMonitor: NVML cannot read GPUs {gpus} ({nvml.status()}), so "
                          "nothing is logged.", RuntimeWarning, stacklevel=2)
        self._monitoring = Monitoring(gpus, self._writers(), prefix(worker_index()),
                                      self.interval, FitWatch())
        self._monitoring.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._monitoring is not None:
            self._monitoring.begin_epoch(epoch)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._monitoring is not None:
            self._monitoring.begin_step(batch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._monitoring is not None:
            self._monitoring.end_step(batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._monitoring is not None:
            self._monitoring.end_epoch()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._finish()

    def _writers(self) -> list[Writer]:
        writers: list[Writer] = []
        if self.log_dir is not None:
            writers.append(EventWriter(self.log_dir))
        if self.mlflow:
            run = RunWriter(self.model.name, _MLFLOW)
            self._run_id = run.run_id
            writers.append(run)
        return writers

    def _finish(self, *, interrupted: bool = False) -> None:
        if self._monitoring is not None:
            self._monitoring.finish(interrupted=interrupted)


def _check_gpus(gpus: Sequence[int] | None) -> None:
    if gpus is None:
        return
    if isinstance(gpus, (str, bytes)) or not all(is_whole(i) and i >= 0 for i in gpus):
        raise ValueError(
            f"gpus must be a sequence of NVML GPU indices >= 0. Received: gpus={gpus!r}")

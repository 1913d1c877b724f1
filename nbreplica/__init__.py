"""nbreplica: data-parallel Keras training on one multi-GPU machine, made for notebooks.

Public API (everything else is private)::

    replicate / multi_gpu_model    split each batch across devices (Keras model in, out)
    check_fidelity                 does a model train replicated as on one device?
    TemplateCheckpoint             ModelCheckpoint that saves the template
    emulate_gpus, list_devices     emulated GPUs on machines without any; what exists
    use_devices, selected_devices  the default device set (the GPU picker writes it)
    snapshot, Sampler, free_gpus   NVML device state: now, over time, which are free
    GpuPicker                      the live GPU picker widget
    sweep, load_results            speedup sweeps over 1, 2, 4, 8 devices; stored runs
    compare                        two stored sweeps side by side, per device count
    GpuMonitor                     Keras callback: the model's GPUs into TensorBoard, MLflow
    forecast, Hardware             how a model would scale on a real multi-GPU machine
    hardware_catalogue             the machines a forecast knows by name
    load_ipython_extension         ``%load_ext nbreplica``: ``%%replicate`` and friends
    cluster                        training across worker processes and machines
                                   (``nbreplica.cluster.launch``)

``import nbreplica`` loads no TensorFlow: each name is imported on first use (PEP 562),
and TensorFlow starts, quietly, with the first name that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbreplica import _startup, _tensorflow

__version__ = "0.1.0"

# Public name -> the module that defines it.
_HOMES = {
    "DeviceConfigurationError": "nbreplica._errors",
    "NbreplicaError": "nbreplica._errors",
    "ReplicaError": "nbreplica._errors",
    "ResultsStoreError": "nbreplica._errors",
    "SweepError": "nbreplica._errors",
    "selected_devices": "nbreplica.gpus.chosen",
    "use_devices": "nbreplica.gpus.chosen",
    "DeviceStats": "nbreplica.devices",
    "ProcessInfo": "nbreplica.devices",
    "Sampler": "nbreplica.devices",
    "driver_version": "nbreplica.devices",
    "free_gpus": "nbreplica.devices",
    "nvml_status": "nbreplica.devices",
    "snapshot": "nbreplica.devices",
    "GpuPicker": "nbreplica.notebook.picker",
    "load_ipython_extension": "nbreplica.notebook.magics",
    "unload_ipython_extension": "nbreplica.notebook.magics",
    "Accelerator": "nbreplica.gpus.available",
    "emulate_gpus": "nbreplica.gpus.available",
    "list_devices": "nbreplica.gpus.available",
    "ReplicatedModel": "nbreplica.replicator.model",
    "FidelityReport": "nbreplica.replicator.fidelity.report",
    "check_fidelity": "nbreplica.replicator.fidelity.check",
    "TemplateCheckpoint": "nbreplica.replicator.checkpoint",
    "multi_gpu_model": "nbreplica.replicator.api",
    "replicate": "nbreplica.replicator.api",
    "SweepInterrupted": "nbreplica.bench.result",
    "SweepResult": "nbreplica.bench.result",
    "load_results": "nbreplica.bench.store",
    "plot_comparison": "nbreplica.bench.plots",
    "sweep": "nbreplica.bench.runner",
    "compare": "nbreplica.bench.compare",
    "GpuMonitor": "nbreplica.tracking.gpu_monitor",
    "Hardware": "nbreplica.forecasting.hardware",
    "forecast": "nbreplica.forecasting.api",
    "hardware_catalogue": "nbreplica.forecasting.catalogue",
}
_NEEDS_TENSORFLOW = ("nbreplica.gpus.available", "nbreplica.replicator.", "nbreplica.bench.runner",
                     "nbreplica.forecasting.api", "nbreplica.tracking.")
# Public subpackages, imported on first use like the names above.
_SUBPACKAGES = ("cluster",)

__all__ = sorted([*_HOMES, *_SUBPACKAGES])


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nbreplica' has no attribute {name!r}")
    if home.startswith(_NEEDS_TENSORFLOW):
        _tensorflow.load()
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]


_startup.configure()

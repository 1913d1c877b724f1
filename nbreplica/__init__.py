"""nbreplica: data-parallel Keras training on one multi-GPU machine, made for notebooks.

Public API (everything else is private)::

    replicate / multi_gpu_model    split each batch across devices (Keras model in, out)
    TemplateCheckpoint             ModelCheckpoint that saves the template
    emulate_gpus, list_devices     emulated GPUs on machines without any; what exists
    use_devices, selected_devices  the default device set (the GPU picker writes it)
    snapshot, Sampler, free_gpus   NVML device state: now, over time, which are free
    GpuPicker                      the live GPU picker widget
    sweep, load_results            speedup sweeps over 1, 2, 4, 8 devices; stored runs
    load_ipython_extension         ``%load_ext nbreplica``: ``%%replicate`` and friends
"""

from nbreplica._errors import (
    DeviceConfigurationError,
    NbreplicaError,
    ReplicaError,
    SweepError,
)
from nbreplica.accelerators import Accelerator, configure_from_env, emulate_gpus, list_devices
from nbreplica.devices import (
    DeviceStats,
    ProcessInfo,
    Sampler,
    driver_version,
    free_gpus,
    nvml_status,
    snapshot,
)
from nbreplica.notebook.picker import GpuPicker
from nbreplica.selection import selected_devices, use_devices

configure_from_env()

from nbreplica.replicate import (  # noqa: E402  (emulation must be applied first)
    ReplicatedModel,
    TemplateCheckpoint,
    multi_gpu_model,
    replicate,
)
from nbreplica.bench import (  # noqa: E402
    SweepInterrupted,
    SweepResult,
    load_results,
    plot_comparison,
    sweep,
)
from nbreplica.notebook.magics import (  # noqa: E402
    load_ipython_extension,
    unload_ipython_extension,
)

__version__ = "0.1.0"

__all__ = [
    "Accelerator",
    "DeviceConfigurationError",
    "DeviceStats",
    "GpuPicker",
    "NbreplicaError",
    "ProcessInfo",
    "ReplicaError",
    "ReplicatedModel",
    "Sampler",
    "SweepError",
    "SweepInterrupted",
    "SweepResult",
    "TemplateCheckpoint",
    "driver_version",
    "emulate_gpus",
    "free_gpus",
    "list_devices",
    "load_ipython_extension",
    "load_results",
    "multi_gpu_model",
    "nvml_status",
    "plot_comparison",
    "replicate",
    "selected_devices",
    "snapshot",
    "sweep",
    "unload_ipython_extension",
    "use_devices",
]

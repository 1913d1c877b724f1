"""A fake NVML driver, for tests and demos on machines without NVIDIA GPUs.

It replaces ``libnvidia-ml.so.1`` under pynvml at the C level, so everything above it
runs unchanged, and everything it feeds is marked simulated::

    from nbreplica.testing import FakeGpu, FakeProcess, fake_nvml

    with fake_nvml(FakeGpu(memory_used=[2 * GIB, 30 * GIB]),
                   FakeGpu(unsupported={"temperature"}, lost_at=5.0)) as driver:
        nbreplica.snapshot()

``FakeGpu(processes=[this_process(2 * GIB)])`` lists the current process itself as a
user of the GPU, as the driver lists a kernel whose TensorFlow holds its memory.

A notebook kernel started with ``NBREPLICA_FAKE_NVML=N`` in its environment gets
:func:`plausible_gpus` ``(N)`` without any code.
"""

from nbreplica.devices.records import GIB
from nbreplica.testing.driver import FUNCTIONS, INIT_ERRORS, FakeDriver, fake_nvml
from nbreplica.testing.gpus import QUERIES, FakeGpu, FakeProcess, Metric, this_process
from nbreplica.testing.plausible import plausible_driver, plausible_gpus

__all__ = [
    "FUNCTIONS",
    "GIB",
    "INIT_ERRORS",
    "QUERIES",
    "FakeDriver",
    "FakeGpu",
    "FakeProcess",
    "Metric",
    "fake_nvml",
    "plausible_driver",
    "plausible_gpus",
    "this_process",
]

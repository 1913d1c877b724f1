"""Every test process runs with 8 emulated GPUs, made (and TensorFlow started, quietly)
when nbreplica is first imported: here, before any test module imports TensorFlow.
The ``spawned`` fixture records the worker processes a test launches and checks that
none is left running."""

import os

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")

import nbreplica  # noqa: E402, F401

from worker_processes import spawned  # noqa: E402, F401  (a fixture for every test)

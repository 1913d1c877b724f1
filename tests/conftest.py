"""Every test process runs with 8 emulated GPUs, made (and TensorFlow started, quietly)
when nbreplica is first imported: here, before any test module imports TensorFlow.
The ``spawned`` fixture records the worker processes a test launches and checks that
none is left running; ``local_ray`` is a Ray on this machine for the Ray backend."""

import os

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")

import nbreplica  # noqa: E402, F401

from ray_cluster import local_ray  # noqa: E402, F401  (fixtures for every test)
from worker_processes import spawned  # noqa: E402, F401

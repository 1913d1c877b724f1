"""Every test process runs with 8 emulated GPUs, made (and TensorFlow started, quietly)
when nbreplica is first imported: here, before any test module imports TensorFlow."""

import os

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")

import nbreplica  # noqa: E402, F401

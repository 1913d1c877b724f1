"""Every test process runs with 8 emulated GPUs: set before TensorFlow starts."""

import os

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

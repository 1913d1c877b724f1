"""Every test process runs with 8 emulated GPUs, made (and TensorFlow started, quietly)
when nbreplica is first imported: here, before any test module imports TensorFlow.
The ``spawned`` fixture records the worker processes a test launches and checks that
none is left running; ``local_ray`` is a Ray on this machine for the Ray backend.

A shell starts background jobs with Ctrl-C (SIGINT) ignored, and processes inherit
that; CI runs one suite in the background, so the default is put back here for the
tests that press Ctrl-C on a command they start."""

import os
import signal

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import nbreplica  # noqa: E402, F401

from ray_cluster import local_ray  # noqa: E402, F401  (fixtures for every test)
from worker_processes import spawned  # noqa: E402, F401

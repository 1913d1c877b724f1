"""Exception types raised by nbreplica (a leaf module: imports nothing of ours)."""

from __future__ import annotations


class NbreplicaError(Exception):
    """Base class of every error nbreplica raises on purpose."""


class DeviceConfigurationError(NbreplicaError, RuntimeError):
    """TensorFlow's devices cannot be (re)configured as asked, e.g. after start-up."""


class ReplicaError(NbreplicaError, RuntimeError):
    """A failure inside one replica; the message names the replica and its device."""


class SweepError(NbreplicaError, RuntimeError):
    """A speedup sweep could not measure a point."""

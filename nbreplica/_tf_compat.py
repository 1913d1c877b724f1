"""Every use of a private TensorFlow function in nbreplica, each behind one small
function (TensorFlow has no public API for these needs). Each was checked on
TensorFlow 2.16.2 (the oldest nbreplica supports) and 2.21."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import tensorflow as tf
from tensorflow.python.eager import record


def is_watched(tensor: tf.Tensor) -> bool:
    """Whether a gradient tape recording now would take a gradient through
    ``tensor``: it was computed from watched values (a model's input usually is not;
    the output of a layer before it is)."""
    return bool(record.should_record_backprop([tensor]))


def is_recording() -> bool:
    """Whether a gradient tape is recording on this thread now (inside a backward pass:
    someone takes a gradient of a gradient)."""
    return bool(record.could_possibly_record())


def unrecorded_when_traced() -> ContextManager[None]:
    """In a traced function, a context in which no gradient tape records; eagerly, one
    that changes nothing (tapes created inside must still record there)."""
    return contextlib.nullcontext() if tf.executing_eagerly() else record.stop_recording()

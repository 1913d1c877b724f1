"""Running a model's calls through a function of nbreplica's, one model at a time.

Reason. A replicated model must run its template, and every Keras model the template
holds, on each replica whenever they are called on a batch, whichever layer calls
them; Keras has no hook for it. An instance attribute ``call`` shadows the class's for
those models only, set with ``object.__setattr__`` because ``Layer.__setattr__`` would
track the function as state.

Keras versions checked: 3.14.0 and 3.15.1. Check by behaviour: on first use (not on
import, which must not start TensorFlow's devices), a probe layer is called with its
``call`` shadowed; if ``Layer.__call__`` no longer runs the instance's ``call``, an
error says so rather than letting replicated models silently run on one device.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nbreplica._errors import NbreplicaError


@contextlib.contextmanager
def instance_calls(calls: Sequence[tuple[keras.Layer, Callable[..., Any]]]) -> Iterator[None]:
    """Within the context, calling each layer runs its paired function instead of the
    class's ``call``; the layers' own ``call`` is back when the context exits.

    Raises:
        NbreplicaError: this Keras no longer runs a layer's instance ``call``.
    """
    _check_instance_calls_run()
    with _shadowed_calls(calls):
        yield


@contextlib.contextmanager
def _shadowed_calls(calls: Sequence[tuple[keras.Layer, Callable[..., Any]]]) -> Iterator[None]:
    for layer, call in calls:
        object.__setattr__(layer, "call", call)
    try:
        yield
    finally:
        for layer, _ in calls:
            object.__delattr__(layer, "call")


@functools.cache
def _check_instance_calls_run() -> None:
    probe = keras.layers.Identity(name="nbreplica_instance_call_probe")
    # Eagerly, even when first used while a tf.function is traced.
    with tf.init_scope(), _shadowed_calls([(probe, lambda inputs, *_, **__: inputs + 1.0)]):
        result = keras.ops.convert_to_numpy(probe(np.zeros((1,), "float32")))
    if result.tolist() != [1.0]:
        raise NbreplicaError(
            "keras.Layer.__call__ no longer runs a layer's instance `call`, so "
            "nbreplica's replicated models would run on one device (checked on Keras "
            f"3.14 and 3.15). Received: keras {keras.__version__}, the probe layer "
            f"returned {result.tolist()} for [0.0] instead of [1.0]"
        )

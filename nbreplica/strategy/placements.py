"""Placing a model for a strategy: one scope to build and train in, one way to prepare.

Every strategy has a ``scope()`` that a model is built and trained in and a
``prepare(model)`` that returns the model to train (a :class:`ReplicatedModel` for
``"split"``). A sweep point builds its model inside the scope and trains what
``prepare`` returns; a ``%%replicate`` cell runs inside the scope, and every
``fit`` / ``evaluate`` / ``predict`` call on a model runs on ``route(model, method)``,
which prepares the models that can be prepared and leaves the others as they are.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ContextManager, Protocol

import keras
import tensorflow as tf

from nbreplica.gpus.available import Accelerator
from nbreplica.replicator.api import replicate
from nbreplica.replicator.model import ReplicatedModel
from nbreplica.strategy.names import BASELINE, MULTIWORKER

#: The methods that need a compiled model; prediction does not.
_NEEDS_COMPILE = frozenset({"fit", "evaluate", "train_on_batch", "test_on_batch"})


class Strategy(Protocol):
    """How models are placed on some devices."""

    name: str
    """``"split"``, ``"mirrored"``, ``"multiworker"`` or ``"single"`` (the baseline)."""
    devices: tuple[Accelerator, ...]

    def scope(self) -> ContextManager[Any]:
        """The context models are built and trained in."""

    def prepare(self, model: keras.Model) -> keras.Model:
        """The model that trains in place of ``model`` (built in :meth:`scope`)."""

    def route(self, model: keras.Model, method: str) -> keras.Model:
        """The model that ``model.<method>(...)`` in a cell runs on."""


class OneDevice:
    """One device: the model runs unchanged under ``tf.device`` (the sweep baseline)."""

    name = BASELINE

    def __init__(self, device: Accelerator) -> None:
        self.devices = (device,)

    def scope(self) -> ContextManager[Any]:
        return tf.device(self.devices[0].device)

    def prepare(self, model: keras.Model) -> keras.Model:
        return model

    def route(self, model: keras.Model, method: str) -> keras.Model:
        return model


class InWorker(OneDevice):
    """No placement: each model runs where it is (a worker process, already inside its
    ``MultiWorkerMirroredStrategy``'s scope)."""

    name = MULTIWORKER

    def __init__(self) -> None:
        self.devices = ()

    def scope(self) -> ContextManager[Any]:
        return contextlib.nullcontext()


class Split:
    """``replicate``: a built model trains through a replicated copy.

    One :class:`~nbreplica.ReplicatedModel` per model is made on first use and kept
    for the strategy's life (one sweep point, one cell run); it shares the template's
    compile state (whatever the template was last compiled with), so optimizer state
    carries on across cells and custom losses need no registration.
    """

    name = "split"

    def __init__(self, devices: Sequence[Accelerator],
                 replicate_options: Mapping[str, Any] | None = None) -> None:
        self.devices = tuple(devices)
        self.options = dict(replicate_options or {})
        shares = self.options.get("shares")
        if shares is not None and not isinstance(shares, str):
            # A sweep's shares name every device: a point on fewer uses the first ones.
            self.options["shares"] = list(shares)[: len(self.devices)]
        # Templates are kept alive, so that the id a replica is found by stays unique.
        self._replicas: dict[int, tuple[keras.Model, ReplicatedModel]] = {}

    def scope(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def prepare(self, model: keras.Model) -> keras.Model:
        if isinstance(model, ReplicatedModel):
            return model
        if id(model) not in self._replicas:
            gpus = [device.index for device in self.devices]
            self._replicas[id(model)] = (model, replicate(model, gpus, **self.options))
        return self._replicas[id(model)][1]

    def route(self, model: keras.Model, method: str) -> keras.Model:
        if isinstance(model, ReplicatedModel):
            return model
        if method in _NEEDS_COMPILE and not model.compiled:
            return model  # Keras raises its own "call compile() first" error
        if not model.built:
            warnings.warn(
                f"Model {model.name!r} is not built yet, so this {method}() call runs "
                "on one device. Build it before training (give it a keras.Input, call "
                "model.build(input_shape), or call it on a batch) to split its batches "
                "across the cell's devices.",
                stacklevel=3,
            )
            return model
        return self.prepare(model)


class Mirrored:
    """``tf.distribute.MirroredStrategy``: models are built and trained in its scope.

    One strategy per device set is kept for the session (see :func:`strategy_for`), so
    a model built in a mirrored cell can be trained by a later mirrored cell over the
    same devices, and sweep points over the same devices share one.
    """

    name = "mirrored"

    def __init__(self, devices: Sequence[Accelerator],
                 cross_device_ops: tf.distribute.CrossDeviceOps | None = None) -> None:
        self.devices = tuple(devices)
        self.strategy = strategy_for(self.devices, cross_device_ops)

    def scope(self) -> ContextManager[Any]:
        return self.strategy.scope()

    def prepare(self, model: keras.Model) -> keras.Model:
        outside = [w.path for w in model.weights
                   if not self.strategy.extended.variable_created_in_scope(w.value)]
        if outside:
            raise ValueError(_built_outside(model, self.devices, outside[0]))
        # Under XLA the strategy would use collective all-reduce, which aborts the
        # process once strategies over different device counts coexist.
        model.jit_compile = False
        return model

    def route(self, model: keras.Model, method: str) -> keras.Model:
        return self.prepare(model)


def _built_outside(model: keras.Model, devices: Sequence[Accelerator], variable: str) -> str:
    return (
        "With --strategy mirrored, models must be built inside the %%replicate cell (or "
        "in an earlier mirrored cell over the same devices), so that MirroredStrategy "
        "creates their variables on every device. Build the model in this cell, or use "
        f"--strategy split. Received: model {model.name!r} with variables made outside "
        f"this cell's strategy over {len(devices)} devices (e.g. {variable!r})"
    )


@functools.cache
def strategy_for(devices: tuple[Accelerator, ...],
                 cross_device_ops: tf.distribute.CrossDeviceOps | None = None,
                 ) -> tf.distribute.MirroredStrategy:
    """The session's ``MirroredStrategy`` over ``devices`` (made on first use; see
    :func:`mirrored_strategy`)."""
    return mirrored_strategy(devices, cross_device_ops)


def mirrored_strategy(
    devices: Sequence[Accelerator],
    cross_device_ops: tf.distribute.CrossDeviceOps | None = None,
) -> tf.distribute.MirroredStrategy:
    """A ``MirroredStrategy`` over ``devices`` that coexists with others in one process.

    ``cross_device_ops`` defaults to ``tf.distribute.ReductionToOneDevice()``.
    Collective all-reduce (the default on CPUs and under XLA) numbers its groups from 1
    in every strategy object, so a second strategy over a different device count in
    the same process joins a group of the wrong size and aborts. Reduction to one
    device uses no collective groups. Under XLA the strategy ignores
    ``cross_device_ops`` and uses collectives again: train its models with
    ``jit_compile=False``.
    """
    return tf.distribute.MirroredStrategy(
        [device.device for device in devices],
        cross_device_ops=cross_device_ops or tf.distribute.ReductionToOneDevice(),
    )


def placement_for(name: str, devices: Sequence[Accelerator], *,
                  replicate_options: Mapping[str, Any] | None = None,
                  cross_device_ops: tf.distribute.CrossDeviceOps | None = None) -> Strategy:
    """The strategy ``name`` (a sweep's or a cell's) over ``devices``; one device runs
    plainly on it, and ``"multiworker"`` runs in its worker process as it is."""
    if name == MULTIWORKER:
        return InWorker()
    if len(devices) == 1:
        return OneDevice(devices[0])
    if name == "split":
        return Split(devices, replicate_options)
    if name == "mirrored":
        return Mirrored(devices, cross_device_ops)
    raise ValueError(
        f"strategy must be 'split', 'mirrored' or 'multiworker'. Received: strategy={name!r}"
    )

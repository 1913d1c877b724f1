"""Where a ``%%replicate`` cell's Keras calls run: split, mirrored, or one device.

A routing has a ``scope()`` the cell body runs in and a ``route(model, method)`` that
names the model a ``fit`` / ``evaluate`` / ``predict`` call on ``model`` really runs
on (see :mod:`nbreplica.notebook.keras_patch`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol

import keras
import tensorflow as tf

from nbreplica.accelerators import Accelerator
from nbreplica.bench.measure import mirrored_strategy
from nbreplica.bench.strategies import BASELINE
from nbreplica.replicator.api import replicate
from nbreplica.replicator.model import ReplicatedModel

#: The methods that need a compiled model; prediction does not.
_NEEDS_COMPILE = frozenset({"fit", "evaluate", "train_on_batch", "test_on_batch"})


class Routing(Protocol):
    """How a cell's models are placed on its devices."""

    name: str
    """``"split"``, ``"mirrored"``, or ``"single"`` (the sweep baseline's name)."""
    devices: tuple[Accelerator, ...]

    def scope(self) -> ContextManager[Any]:
        """The context the cell body runs in."""

    def route(self, model: keras.Model, method: str) -> keras.Model:
        """The model that ``model.<method>(...)`` runs on."""


class OneDevice:
    """One device: the cell runs unchanged under ``tf.device`` (the sweep baseline)."""

    name = BASELINE

    def __init__(self, device: Accelerator) -> None:
        self.devices = (device,)

    def scope(self) -> ContextManager[Any]:
        return tf.device(self.devices[0].device)

    def route(self, model: keras.Model, method: str) -> keras.Model:
        return model


class AsIs:
    """No placement: each model runs where it is (a worker process of
    ``%%replicate --workers``, already inside its strategy's scope)."""

    name = "multiworker"
    devices: tuple[Accelerator, ...] = ()

    def scope(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def route(self, model: keras.Model, method: str) -> keras.Model:
        return model


@dataclass
class _Replica:
    """A template's replicated model."""

    template: keras.Model  # kept alive, so that the id the replica is found by stays unique
    model: ReplicatedModel


class Split:
    """``replicate``: a built, compiled model runs through a replicated copy.

    One :class:`~nbreplica.ReplicatedModel` per model is made on first use and kept
    for the routing's life (one cell run); it shares the template's compile state
    (whatever the template was last compiled with), so optimizer state carries on
    across cells.
    """

    name = "split"

    def __init__(self, devices: Sequence[Accelerator]) -> None:
        self.devices = tuple(devices)
        self._replicas: dict[int, _Replica] = {}

    def scope(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

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
        return self._replica(model)

    def _replica(self, template: keras.Model) -> ReplicatedModel:
        replica = self._replicas.get(id(template))
        if replica is None:
            gpus = [device.index for device in self.devices]
            replica = self._replicas[id(template)] = _Replica(template, replicate(template, gpus))
        return replica.model


class Mirrored:
    """``tf.distribute.MirroredStrategy``: the cell runs in the strategy's scope.

    One strategy per device set is kept for the session (see :func:`strategy_for`), so
    a model built in a mirrored cell can be trained by a later mirrored cell over the
    same devices.
    """

    name = "mirrored"

    def __init__(self, devices: Sequence[Accelerator]) -> None:
        self.devices = tuple(devices)
        self.strategy = strategy_for(self.devices)

    def scope(self) -> ContextManager[Any]:
        return self.strategy.scope()

    def route(self, model: keras.Model, method: str) -> keras.Model:
        outside = [w.path for w in model.weights
                   if not self.strategy.extended.variable_created_in_scope(w.value)]
        if outside:
            raise ValueError(_built_outside(model, self.devices, outside[0]))
        if model.jit_compile:
            # Under XLA the strategy would use collective all-reduce, which aborts the
            # process once strategies over different device counts coexist.
            model.jit_compile = False
        return model


def _built_outside(model: keras.Model, devices: Sequence[Accelerator], variable: str) -> str:
    return (
        "With --strategy mirrored, models must be built inside the %%replicate cell (or "
        "in an earlier mirrored cell over the same devices), so that MirroredStrategy "
        "creates their variables on every device. Build the model in this cell, or use "
        f"--strategy split. Received: model {model.name!r} with variables made outside "
        f"this cell's strategy over {len(devices)} devices (e.g. {variable!r})"
    )


@functools.cache
def strategy_for(devices: tuple[Accelerator, ...]) -> tf.distribute.MirroredStrategy:
    """The session's ``MirroredStrategy`` over ``devices`` (made on first use)."""
    return mirrored_strategy(devices)


def routing_for(devices: Sequence[Accelerator], strategy: str) -> Routing:
    """The routing of a cell run on ``devices`` with ``strategy`` (``"split"`` or
    ``"mirrored"``); one device always runs plainly on it."""
    if len(devices) == 1:
        return OneDevice(devices[0])
    return Split(devices) if strategy == "split" else Mirrored(devices)

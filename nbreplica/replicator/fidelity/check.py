"""``check_fidelity``: does a model train replicated as it trains on one device?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from nbreplica._checks import is_whole
from nbreplica.replicator.api import replicate
from nbreplica.replicator.fidelity.capture import FirstGradients, StepLogs
from nbreplica.replicator.fidelity.copies import ModelOrBuilder, compile_fresh, make_copies
from nbreplica.replicator.fidelity.difference import threshold_for
from nbreplica.replicator.fidelity.documented import documented_differences
from nbreplica.replicator.fidelity.frames import Run, step_frame, weight_frame
from nbreplica.replicator.fidelity.probe import origins
from nbreplica.replicator.fidelity.report import FidelityReport
from nbreplica.gpus.replicas import resolve_gpus

#: The ``fit`` arguments the check sets itself.
_OWN_FIT_ARGUMENTS = ("epochs", "initial_epoch", "steps_per_epoch", "shuffle")
_DEFAULT_BATCH_SIZE = 32  # what Model.fit uses for arrays when batch_size is None


def check_fidelity(model: ModelOrBuilder, x: Any, y: Any = None,
                   gpus: int | Sequence[int] | None = 4, steps: int = 3, *,
                   shares: str | Sequence[float] | None = None,
                   **fit_kwargs: Any) -> FidelityReport:
    """Check that ``model`` trains replicated over ``gpus`` as it trains on one device.

    Two copies with identical weights and seeds train ``steps`` steps of ``fit(x, y,
    shuffle=False, **fit_kwargs)`` without XLA: one on one device, one through
    ``nbreplica.replicate(copy, gpus=gpus)``, compiled with the model's compile
    arguments and a new optimizer of the same config (or as the builder compiled them).
    Compared are the gradients ``model.optimizer`` receives at the first step (from a
    template's own ``train_step`` too), every weight after the last step, the losses
    and metrics after each step and, for a functional or Sequential model, every
    layer's output on the first batch. A difference (the largest element-wise one over
    the larger magnitude, at least 1e-6) counts above what rounding reaches: 1e-5 for a
    float32 compute dtype, 5e-3 for float16, 4e-2 for bfloat16.
    :class:`~nbreplica.FidelityReport` says what documented differences explain.

    Args:
        model: A compiled Keras model (cloned, not changed), or a function without
            arguments that builds and compiles one (called twice; weights of the first).
        x, y: The training data, as ``fit`` takes it, read once per copy: arrays, a
            ``tf.data.Dataset`` or a ``keras.utils.PyDataset``.
        gpus: The replicated copy's devices, as :func:`nbreplica.replicate` takes them.
        steps: Training steps of each copy (the data must hold that many batches).
        shares: How the replicated copy splits each batch, as
            :func:`nbreplica.replicate` takes it (``"auto"`` calibrates once).
        **fit_kwargs: More ``fit`` arguments for both copies (``batch_size``,
            ``sample_weight``, ``callbacks``, ``verbose``: default 0, ...); not
            ``epochs``, ``initial_epoch``, ``steps_per_epoch`` or ``shuffle``.

    Returns:
        A :class:`~nbreplica.FidelityReport`; ``str(report)`` is its verdict.

    Raises:
        TypeError: ``model`` is not a Keras model nor a function returning one;
            ``steps`` or ``gpus`` have the wrong type.
        ValueError: a model is not compiled or cannot be copied (it has its own
            ``compile``: pass a builder); the builder returns one model or optimizer
            twice; ``gpus`` names fewer than two devices or devices that do not exist;
            ``steps < 1``; ``fit_kwargs`` holds an argument the check sets; ``x`` is a
            generator or an iterator, or holds fewer than ``steps`` batches.
    """
    _check_data_and_steps(x, steps, fit_kwargs)
    devices = [a.index for a in resolve_gpus(gpus, caller="call `check_fidelity`")]
    copies = make_copies(model)
    replicated = replicate(copies.twin, gpus=devices, shares=shares)
    if copies.compile_arguments is not None:
        for copy in (copies.plain, replicated):
            compile_fresh(copy, copies.compile_arguments)
    copies.plain.jit_compile = False  # as a replicated model always runs
    plain_run = _train(copies.plain, copies.plain, x, y, steps, fit_kwargs)
    replicated_run = _train(replicated, copies.twin, x, y, steps, fit_kwargs)
    threshold = threshold_for(copies.plain.dtype_policy.compute_dtype)
    return FidelityReport(
        frame=weight_frame(plain_run, replicated_run, threshold),
        history=step_frame(plain_run, replicated_run, threshold),
        documented=tuple(documented_differences(copies.plain)),
        # Last: the probe runs the trained one-device copy in training mode.
        origins=origins(copies.plain, _first_batch(x, fit_kwargs.get("batch_size")),
                        devices, threshold, replicated.shares),
        threshold=threshold, steps=steps, devices=len(devices),
    )


def _check_data_and_steps(x: Any, steps: object, fit_kwargs: dict[str, Any]) -> None:
    if hasattr(x, "__next__"):
        raise ValueError(
            "check_fidelity trains two copies on the same batches, so it reads the data "
            "twice: pass arrays, a tf.data.Dataset or a keras.utils.PyDataset, not a "
            f"generator or iterator. Received: x={x!r}")
    if not is_whole(steps):
        raise TypeError("check_fidelity's steps must be a whole number of training steps. "
                        f"Received: steps={steps!r} of type {type(steps).__name__}")
    if steps < 1:
        raise ValueError("check_fidelity trains each copy at least one step: steps must be "
                         f">= 1. Received: steps={steps}")
    own = [name for name in _OWN_FIT_ARGUMENTS if name in fit_kwargs]
    if own:
        raise ValueError(
            "check_fidelity trains each copy `steps` steps of one unshuffled epoch: it sets "
            f"{', '.join(_OWN_FIT_ARGUMENTS)} itself. Received: "
            + ", ".join(f"{name}={fit_kwargs[name]!r}" for name in own))


def _train(model: keras.Model, weights_of: keras.Model, x: Any, y: Any, steps: int,
           fit_kwargs: dict[str, Any]) -> Run:
    """Train ``model`` ``steps`` steps; what it showed, for ``weights_of``'s weights
    (``model`` itself, or the template of the replicated ``model``)."""
    variables = weights_of.trainable_variables
    gradients = FirstGradients(model, variables)
    logs = StepLogs()
    arguments = {"verbose": 0, **fit_kwargs}
    arguments["callbacks"] = [*(arguments.get("callbacks") or []), logs]
    model.fit(x, y, epochs=1, steps_per_epoch=steps, shuffle=False, **arguments)
    ran = max(logs.steps, default=0)
    if ran < steps:
        raise ValueError(
            f"check_fidelity trains {steps} steps, but the data held {ran} batches. Pass "
            f"fewer steps or more data. Received: steps={steps}")
    return Run(weights_of, gradients.values(), logs.steps)


def _first_batch(x: Any, batch_size: int | None) -> Any:
    """The inputs of the first batch ``fit`` takes from ``x``."""
    if isinstance(x, keras.utils.PyDataset):
        element = x[0]
    elif isinstance(x, tf.data.Dataset):
        element = next(iter(x))
    else:
        rows = batch_size or _DEFAULT_BATCH_SIZE
        return keras.tree.map_structure(lambda array: array[:rows], x)
    return element[0] if isinstance(element, tuple) else element

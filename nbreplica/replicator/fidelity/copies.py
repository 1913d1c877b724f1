"""Two copies of a model with identical weights, compiled alike with fresh optimizers:
one to train on one device, one to train replicated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from nbreplica._keras_compat import compile_arguments

ModelOrBuilder = keras.Model | Callable[[], keras.Model]


@dataclass(frozen=True)
class Copies:
    """The copies, and the compile arguments to compile both with (``None``: each
    was compiled, with its own optimizer, by the builder that made it)."""

    plain: keras.Model
    """Trained on one device."""
    twin: keras.Model
    """The template of the replicated copy."""
    compile_arguments: dict[str, Any] | None


def make_copies(model: ModelOrBuilder) -> Copies:
    """Copies of ``model`` (a compiled Keras model, cloned, to compile with its compile
    arguments; or a function building and compiling one, called twice), holding
    ``model``'s (or the first build's) weights and random seeds.

    Raises:
        TypeError: ``model`` is neither, or the function returns no Keras model.
        ValueError: a model is not compiled; the compiled model has its own
            ``compile`` or cannot be cloned; the builder returns one model or optimizer
            twice; the copies differ in their weights' shapes.
    """
    if isinstance(model, keras.Model):
        _require_compiled(model, f"model={model.name!r}")
        _require_keras_compile(model)
        source, plain, twin = model, _clone(model), _clone(model)
        arguments: dict[str, Any] | None = compile_arguments(model)
    elif callable(model):
        plain, twin = _build(model), _build(model)
        _require_two(model, plain, twin)
        source, arguments = plain, None
    else:
        raise TypeError(
            "check_fidelity expects a compiled Keras model, or a function without "
            "arguments that builds and compiles one. "
            f"Received: model={model!r} of type {type(model).__name__}")
    for copy in (plain, twin):
        _copy_state(source, copy)
    return Copies(plain, twin, arguments)


def compile_fresh(model: keras.Model, arguments: dict[str, Any]) -> None:
    """Compile ``model`` with ``arguments`` and a new optimizer of the same config,
    without ``jit_compile`` (a replicated model refuses XLA)."""
    optimizer = keras.optimizers.get(arguments["optimizer"])
    fresh = optimizer.from_config(optimizer.get_config())
    model.compile(**{**arguments, "optimizer": fresh, "jit_compile": "auto"})


def _require_keras_compile(model: keras.Model) -> None:
    if type(model).compile is not keras.Model.compile:
        raise ValueError(
            "check_fidelity compiles copies of a model with the arguments Keras's compile "
            f"received, but model {model.name!r} has its own compile. Pass a function that "
            "builds and compiles the model instead: check_fidelity(build_model, x, y). "
            f"Received: model={model.name!r} of type {type(model).__name__}")


def _require_two(builder: Callable[[], keras.Model], plain: keras.Model,
                 twin: keras.Model) -> None:
    for kind, mine, theirs in (("model", plain, twin),
                               ("optimizer", plain.optimizer, twin.optimizer)):
        if mine is theirs:
            raise ValueError(
                f"check_fidelity calls the builder twice and needs a new {kind} each "
                f"time. Received: model={builder!r}, which returned {kind} "
                f"{mine.name!r} twice")


def _require_compiled(model: keras.Model, received: str) -> None:
    if not model.compiled:
        raise ValueError(
            "check_fidelity trains the model, so it must be compiled: call "
            f"model.compile(...) first. Received: {received} (compiled=False)")


def _build(builder: Callable[[], keras.Model]) -> keras.Model:
    built = builder()
    if not isinstance(built, keras.Model):
        raise TypeError(
            "check_fidelity's builder must return a compiled Keras model. Received: "
            f"model={builder!r}, which returned {built!r} of type {type(built).__name__}")
    _require_compiled(built, f"model={builder!r}, which returned model {built.name!r}")
    return built


def _clone(model: keras.Model) -> keras.Model:
    try:
        return keras.models.clone_model(model, recursive=True)
    except Exception as error:
        raise ValueError(
            f"check_fidelity could not copy the model ({type(error).__name__}: {error}). "
            "Pass a function that builds and compiles it instead: "
            f"check_fidelity(build_model, x, y). Received: model={model.name!r}"
        ) from error


def _copy_state(source: keras.Model, copy: keras.Model) -> None:
    """Give ``copy`` the values of ``source``'s weights and seed generators' states."""
    if copy is source:
        return
    want, got = source.variables, copy.variables
    if [tuple(v.shape) for v in want] != [tuple(v.shape) for v in got]:
        raise ValueError(
            "check_fidelity needs two copies of the model with the same weights, but "
            f"model {copy.name!r} has {len(got)} variables of other shapes than model "
            f"{source.name!r}'s {len(want)}. Received: model={source.name!r}")
    for variable, value in zip(got, want):
        variable.assign(value)

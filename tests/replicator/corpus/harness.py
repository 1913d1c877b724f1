"""The shared harness of the real-world fidelity corpus.

Each corpus module ports one keras-io example (or a ``keras.applications`` model) to a
few rows of synthetic data and describes it as an :class:`Example`: how to build the
template, the arguments its ``compile`` takes, and the steps the example runs (``fit``,
``evaluate``, ``predict``, ...). :func:`assert_trains_like_one_device` runs those steps
twice, each time on a template built from the same seed and compiled with fresh
objects of the same configuration: plainly on one device, and through
``nbreplica.replicate(template, gpus=devices)``. Everything the steps return, and the
template's weights afterwards, must agree to ``RTOL``/``ATOL`` (float32 rounding).
The one-device run of an example is made once and shared by its device counts.

Ported code keeps each example's own names, signatures and structure, so that it reads
side by side with its source; each module's docstring says what its copy changes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

import nbreplica

#: The device counts every example is replicated on.
DEVICES = [4, 8]
RTOL, ATOL = 1e-5, 1e-6
SEED = 1337


@dataclass(frozen=True)
class Session:
    """What an example's steps work with: ``model`` is the compiled model to drive (the
    template itself, or its replicated wrapper), ``devices`` is ``None`` on one device."""

    model: keras.Model
    template: keras.Model
    devices: int | None

    def wrap(self, model: keras.Model) -> keras.Model:
        """``model`` as this session runs models: replicated like ``self.model``."""
        return model if self.devices is None else nbreplica.replicate(model, gpus=self.devices)


Steps = Callable[[Session], Mapping[str, Any]]


@dataclass(frozen=True, eq=False)
class Example:
    """One corpus example.

    ``build`` returns a built template (the harness seeds Keras first);
    ``compile_args`` returns the keyword arguments of its ``compile``, made anew at each
    call; ``steps`` drives the compiled model and returns what must agree with one
    device. ``policy`` is the dtype policy the whole run uses; ``compare_weights=False``
    leaves the template's final weights out of the comparison (the example says why).
    """

    build: Callable[[], keras.Model]
    compile_args: Callable[[], dict[str, Any]]
    steps: Steps
    policy: str = "float32"
    compare_weights: bool = True


def fit_steps(x: Any, y: Any = None, *, predict: Any = None, evaluate: Any = None,
              callbacks: Callable[[], list[keras.callbacks.Callback]] | None = None,
              **fit_kwargs: Any) -> Steps:
    """The steps most examples run: ``fit`` (unshuffled, with the callbacks
    ``callbacks()`` makes anew), then ``evaluate`` on the ``(x, y)`` pair ``evaluate``
    and ``predict`` on ``predict``, where given."""

    def steps(session: Session) -> dict[str, Any]:
        model = session.model
        fresh_callbacks = callbacks() if callbacks is not None else None
        history = model.fit(x, y, shuffle=False, verbose=0, callbacks=fresh_callbacks,
                            **fit_kwargs).history
        results: dict[str, Any] = {"history": history}
        if evaluate is not None:
            results["evaluation"] = model.evaluate(*evaluate, verbose=0, return_dict=True)
        if predict is not None:
            results["predictions"] = model.predict(predict, verbose=0)
        return results

    return steps


def run(example: Example, devices: int | None) -> dict[str, Any]:
    """Build, compile and drive ``example`` on one device (``devices=None``) or
    replicated on ``devices``; what its steps returned, plus the final weights."""
    with _global_policy(example.policy):
        keras.utils.set_random_seed(SEED)
        template = example.build()
        model = template if devices is None else nbreplica.replicate(template, gpus=devices)
        model.compile(**example.compile_args())
        results = dict(example.steps(Session(model, template, devices)))
        if example.compare_weights:
            results["weights"] = template.get_weights()
    return results


@functools.cache
def one_device(example: Example) -> dict[str, Any]:
    """``run(example, None)``, made once per example."""
    return run(example, None)


def assert_trains_like_one_device(example: Example, devices: int, rtol: float = RTOL,
                                  atol: float = ATOL) -> None:
    """Replicated on ``devices``, ``example`` gives what it gives on one device."""
    want = one_device(example)
    assert_same(run(example, devices), want, rtol=rtol, atol=atol)


def assert_same(got: Any, want: Any, rtol: float = RTOL, atol: float = ATOL,
                path: str = "results") -> None:
    """Nested dicts and sequences with the same structure; numbers (and arrays) equal
    to ``rtol``/``atol``, anything else exactly. Failures name the path of the leaf."""
    if isinstance(want, Mapping):
        assert isinstance(got, Mapping) and set(got) == set(want), (
            f"{path}: keys {sorted(got) if isinstance(got, Mapping) else got!r}, "
            f"expected {sorted(want)}")
        for key in want:
            assert_same(got[key], want[key], rtol, atol, f"{path}[{key!r}]")
    elif isinstance(want, Sequence) and not isinstance(want, str):
        assert isinstance(got, Sequence) and len(got) == len(want), (
            f"{path}: {len(got) if isinstance(got, Sequence) else got!r} items, "
            f"expected {len(want)}")
        for index, (got_item, want_item) in enumerate(zip(got, want)):
            assert_same(got_item, want_item, rtol, atol, f"{path}[{index}]")
    elif isinstance(want, (str, bytes, bool)):
        assert got == want, f"{path}: {got!r}, expected {want!r}"
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol,
                                   err_msg=path)


def freeze_batch_normalization(model: keras.Model) -> keras.Model:
    """``model`` with every ``BatchNormalization`` layer frozen (``trainable=False``,
    which also runs it in inference mode): a replica would otherwise normalize with
    its own sub-batch's statistics, a documented difference from one device."""
    for layer in _nested_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


def _nested_layers(model: keras.Model) -> Iterator[keras.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _nested_layers(layer)


@contextlib.contextmanager
def _global_policy(name: str) -> Iterator[None]:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)

"""Route ``keras.Model``'s training, evaluation and prediction methods during a cell.

Reason. Keras has no hook that runs a model's ``fit`` / ``evaluate`` / ``predict`` on
another model, and a ``%%replicate`` cell must train the cell's own models through
their replicated copies without the cell being changed. The methods are replaced on
``keras.Model`` itself (so every Functional, Sequential and subclassed model is
covered) and put back when the context exits, however it exits.

Keras versions checked: 3.14.0 and 3.15.1. Check by behaviour: before replacing
anything, :func:`routed_model_methods` checks that ``keras.Model`` still has every
method of :data:`ROUTED_METHODS` and that ``fit`` still takes ``callbacks`` (where the
timing callback goes), and raises an error naming what is missing otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import keras

from nbreplica._errors import NbreplicaError

ROUTED_METHODS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch",
                  "predict_on_batch")

#: Names the model a ``model.<method>(...)`` call really runs on.
Route = Callable[[keras.Model, str], keras.Model]
#: Sees a ``fit`` call's model and bound arguments (and may change the arguments).
ObserveFit = Callable[[keras.Model, dict[str, Any]], None]

_ABSENT = object()


@contextlib.contextmanager
def routed_model_methods(route: Route, observe_fit: ObserveFit) -> Iterator[None]:
    """Within the context, ``model.<method>(...)`` runs on ``route(model, method)`` for
    every method in :data:`ROUTED_METHODS`, and ``observe_fit`` sees every ``fit``.

    Raises:
        NbreplicaError: this Keras's ``Model`` lacks a method or ``fit`` its
            ``callbacks`` argument.
    """
    _check_routable()
    own = {name: keras.Model.__dict__.get(name, _ABSENT) for name in ROUTED_METHODS}
    for name in ROUTED_METHODS:
        setattr(keras.Model, name, _routed(name, getattr(keras.Model, name), route,
                                           observe_fit))
    try:
        yield
    finally:
        for name, method in own.items():
            if method is _ABSENT:
                delattr(keras.Model, name)
            else:
                setattr(keras.Model, name, method)


def _check_routable() -> None:
    missing = [name for name in ROUTED_METHODS if not callable(getattr(keras.Model, name, None))]
    if not missing and "callbacks" not in inspect.signature(keras.Model.fit).parameters:
        missing = ["fit(callbacks=...)"]
    if missing:
        raise NbreplicaError(
            "%%replicate cannot route this Keras's model methods: keras.Model lacks "
            f"{', '.join(missing)}. Received: keras {keras.__version__}"
        )


def _routed(name: str, original: Callable[..., Any], route: Route,
            observe_fit: ObserveFit) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def method(model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out of the user's traceback
        target = route(model, name)
        if target is not model and getattr(type(target), name) is not method:
            # The model routed to has its own method (a ReplicatedModel checks that the
            # batch fits its shares): it runs, and reaches Keras's through this one.
            return getattr(target, name)(*args, **kwargs)
        if name != "fit":
            return original(target, *args, **kwargs)
        call = signature.bind(target, *args, **kwargs)
        observe_fit(target, call.arguments)
        return original(*call.args, **call.kwargs)

    return method

"""Route ``keras.Model``'s training, evaluation and prediction methods during a cell.

The methods are replaced on ``keras.Model`` itself (so every Functional, Sequential
and subclassed model is covered) and put back when the context exits, however it
exits.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import keras

from nbreplica.notebook.routing import Routing
from nbreplica.notebook.training import FitObserver

ROUTED_METHODS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch",
                  "predict_on_batch")

_ABSENT = object()


@contextlib.contextmanager
def routed_model_methods(routing: Routing, observer: FitObserver) -> Iterator[None]:
    """Within the context, ``model.<method>(...)`` runs on ``routing.route(model,
    method)`` for every method in :data:`ROUTED_METHODS`, and ``observer`` times every
    ``fit``."""
    own = {name: keras.Model.__dict__.get(name, _ABSENT) for name in ROUTED_METHODS}
    for name in ROUTED_METHODS:
        setattr(keras.Model, name, _routed(name, getattr(keras.Model, name), routing, observer))
    try:
        yield
    finally:
        for name, method in own.items():
            if method is _ABSENT:
                delattr(keras.Model, name)
            else:
                setattr(keras.Model, name, method)


def _routed(name: str, original: Callable[..., Any], routing: Routing,
            observer: FitObserver) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def method(model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out of the user's traceback
        target = routing.route(model, name)
        if name != "fit":
            return original(target, *args, **kwargs)
        call = signature.bind(target, *args, **kwargs)
        observer.observe(target, call.arguments)
        return original(*call.args, **call.kwargs)

    return method

"""Every use of a private Keras attribute in nbreplica, each behind one small function.

Keras has no public API for these needs; keeping them here makes a Keras upgrade a
one-file review. Each function was checked on Keras 3.14.0 (the oldest Keras nbreplica
supports, with TensorFlow 2.16.2) and 3.15.1 (with TensorFlow 2.21).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask

#: The attributes ``Model.compile`` sets that a model's ``train_step``, ``test_step``,
#: ``compute_loss``, ``compute_metrics`` and ``metrics`` read.
_COMPILE_STATE = ("compiled", "optimizer", "_compile_loss", "_compile_metrics",
                  "_loss_tracker")
_ABSENT = object()


def get_mask(tensor: Any) -> Any:
    """The Keras mask attached to ``tensor`` (``_keras_mask``), or ``None``."""
    return get_keras_mask(tensor)


def set_mask(tensor: Any, mask: Any) -> None:
    """Attach ``mask`` to ``tensor`` as its Keras mask, as a masking layer would."""
    set_keras_mask(tensor, mask)


def clear_call_losses(layer: keras.Layer) -> None:
    """Forget the losses ``layer`` and its sublayers added in calls (``add_loss`` and
    activity regularizers), as Keras does when an outermost call begins."""
    layer._clear_losses()


def add_call_loss(layer: keras.Layer, loss: Any) -> None:
    """``layer.add_loss(loss)``, also for functional models, whose ``add_loss`` accepts
    symbolic losses only (``Layer.add_loss`` keeps a tensor in ``_losses``)."""
    keras.Layer.add_loss(layer, loss)


def flatten_layers(model: keras.Layer) -> list[keras.Layer]:
    """``model`` and every layer nested in it, however deep (``_flatten_layers``)."""
    return model._flatten_layers()


def compute_loss(model: keras.Model, **kwargs: Any) -> Any:
    """``model.compute_loss(**kwargs)``, leaving out ``training`` for overrides written
    before Keras 3.3 added it (``Trainer._compute_loss``)."""
    return model._compute_loss(**kwargs)


@contextlib.contextmanager
def lent_compile_state(owner: keras.Model, borrower: keras.Model) -> Iterator[None]:
    """Within the context, ``borrower`` holds ``owner``'s compile state: its optimizer,
    loss, metrics and loss tracker (Keras keeps the last three private).

    The attributes are set without Keras's tracking, so ``borrower`` does not adopt
    them as its own weights or metrics, and are put back on exit.
    """
    saved = {name: borrower.__dict__.get(name, _ABSENT) for name in _COMPILE_STATE}
    for name in _COMPILE_STATE:
        object.__setattr__(borrower, name, getattr(owner, name, None))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _ABSENT:
                object.__delattr__(borrower, name)
            else:
                object.__setattr__(borrower, name, value)


def compile_arguments(model: keras.Model) -> dict[str, Any]:
    """The arguments ``model.compile`` last received, as given (``_compile_config``):
    unregistered custom losses and metrics stay usable, unlike in
    ``get_compile_config()``'s serialized form."""
    return dict(model._compile_config.config)


def compile_token(model: keras.Model) -> object:
    """An object that changes whenever ``model`` is compiled again."""
    return model._compile_config


def rebuild_variable(variable: keras.Variable, value: Any) -> None:
    """Replace the TensorFlow storage behind ``variable`` with a new one holding
    ``value``, made under the current device scope; the Keras variable object, and
    everything holding it, stays valid (``KerasVariable._initialize``)."""
    variable._initialize(value)

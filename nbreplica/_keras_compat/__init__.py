"""The one home of nbreplica's Keras workarounds, and every use of a private Keras
attribute, each behind one small function.

Each workaround says why it exists, the Keras versions it was checked on (3.14.0, the
oldest nbreplica supports, with TensorFlow 2.16.2, and 3.15.1 with TensorFlow 2.21,
the two ends of the range ``pyproject.toml`` declares and CI tests) and how it checks
by behaviour, not by version number, that this Keras still needs it and still works
with it, raising an error that names what changed rather than silently behaving
otherwise:

- this module: Keras has no public API for masks, call losses, nested layers, seed
  generators, compile state, ``compute_loss`` or a variable's storage; the private
  methods behind them are checked when it is imported (:func:`missing_methods`), the
  attributes Keras sets when it reads them.
- :mod:`~nbreplica._keras_compat.instance_call`: a replicated model runs its template
  and the models it holds through an instance ``call``.
- :mod:`~nbreplica._keras_compat.routed_methods`: ``%%replicate`` routes
  ``keras.Model``'s ``fit`` / ``evaluate`` / ``predict``.
- :mod:`~nbreplica._keras_compat.multiworker_fit`: Keras's ``fit`` across workers.
- :mod:`~nbreplica._keras_compat.chief_saving`: only the chief writes saved models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask


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


def seed_generators(layer: keras.Layer) -> list[keras.random.SeedGenerator]:
    """The ``SeedGenerator``s ``layer`` itself owns, not those of its sublayers
    (``_seed_generators``)."""
    return list(_instance_attribute(layer, "_seed_generators"))


def compile_arguments(model: keras.Model) -> dict[str, Any]:
    """The arguments ``model.compile`` last received, as given (``_compile_config``):
    unregistered custom losses and metrics stay usable, unlike in
    ``get_compile_config()``'s serialized form."""
    return dict(_instance_attribute(model, "_compile_config").config)


def compute_loss(model: keras.Model, **kwargs: Any) -> Any:
    """``model.compute_loss(**kwargs)``, leaving out ``training`` for overrides written
    before Keras 3.3 added it (``Trainer._compute_loss``)."""
    return model._compute_loss(**kwargs)


#: The attributes ``Model.compile`` sets that Keras's training loop, a model's steps
#: and its ``metrics`` read.
COMPILE_STATE = ("optimizer", "compiled", "loss", "steps_per_execution", "_run_eagerly",
                 "_compile_loss", "_compile_metrics", "_loss_tracker", "_compile_config")


class _Shared:
    """A compile-state attribute read from and written to the model held in
    ``owner_attribute``. Before that model is attached (while Keras's constructor
    runs), the value is kept on the sharing model itself."""

    def __init__(self, name: str, owner_attribute: str) -> None:
        self.name, self.owner_attribute = name, owner_attribute
        self.fallback = f"_{owner_attribute}_unset{name}"

    def __get__(self, model: Any, cls: type | None = None) -> Any:
        if model is None:
            return self
        owner = model.__dict__.get(self.owner_attribute)
        if owner is None:
            return model.__dict__.get(self.fallback)
        return getattr(owner, self.name, None)

    def __set__(self, model: Any, value: Any) -> None:
        owner = model.__dict__.get(self.owner_attribute)
        if owner is None:
            model.__dict__[self.fallback] = value
        else:
            setattr(owner, self.name, value)


def share_compile_state(owner_attribute: str) -> Callable[[type], type]:
    """A class decorator: the model class's compile state (:data:`COMPILE_STATE`) is
    that of the model its instances hold in ``owner_attribute``, whatever that model's
    own ``compile`` set."""
    def decorate(cls: type) -> type:
        for name in COMPILE_STATE:
            setattr(cls, name, _Shared(name, owner_attribute))
        return cls
    return decorate


def rebuild_variable(variable: keras.Variable, value: Any) -> None:
    """Replace the TensorFlow storage behind ``variable`` with a new one holding
    ``value``, made under the current device scope; the Keras variable object, and
    everything holding it, stays valid (``KerasVariable._initialize``)."""
    variable._initialize(value)


#: The private methods this module calls, per owner: checked on import.
PRIVATE_METHODS = {
    keras.Layer: ("_clear_losses", "_flatten_layers"),
    keras.Model: ("_compute_loss",),
    keras.Variable: ("_initialize",),
}


def missing_methods() -> list[str]:
    """The private methods of :data:`PRIVATE_METHODS` this Keras lacks."""
    return [f"{owner.__name__}.{name}" for owner, names in PRIVATE_METHODS.items()
            for name in names if not callable(getattr(owner, name, None))]


def _instance_attribute(owner: Any, name: str) -> Any:
    """``owner.<name>``, an attribute Keras's constructor or ``compile`` sets."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise RuntimeError(
            f"nbreplica reads Keras's private attribute {name} (checked on Keras 3.14 and "
            f"3.15), which this Keras no longer sets. Received: keras {keras.__version__}, "
            f"{type(owner).__name__} without {name}"
        ) from None


def _check_private_methods() -> None:
    missing = missing_methods()
    if missing:
        raise ImportError(
            "nbreplica needs private Keras methods that this Keras no longer has "
            f"(checked on Keras 3.14 and 3.15): {', '.join(missing)}. "
            f"Received: keras {keras.__version__}"
        )


_check_private_methods()

"""The layers of a model that a replicated model is documented to train differently.

Two kinds: ``BatchNormalization`` in training (per-replica statistics, moving averages
updated once per replica) and layers that draw randomness (one independent draw per
replica instead of one for the whole batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from nbreplica import _keras_compat as compat

#: Attributes by which Keras's random layers say how much they draw: a layer whose
#: rates are all zero (``Dropout(0)``, an ``LSTM`` without dropout) draws nothing.
_RATES = ("rate", "dropout", "recurrent_dropout", "stddev")

BATCH_STATISTICS = "batch statistics"
RANDOMNESS = "randomness"


@dataclass(frozen=True)
class DocumentedDifference:
    """A layer that trains differently when replicated, as documented."""

    layer: str
    """The layer's name (for a nested model: the name of the layer inside it)."""
    layer_class: str
    kind: str
    """:data:`BATCH_STATISTICS` or :data:`RANDOMNESS`."""
    within: tuple[str, ...] = ()
    """The nested models holding the layer, outermost first."""

    def __str__(self) -> str:
        if self.kind == BATCH_STATISTICS:
            reason = ("in training, each replica normalises its sub-batch with its own "
                      "statistics, and the moving averages are updated once per replica "
                      "per step (effective momentum: momentum ** devices)")
        else:
            reason = ("draws one independent random sample (a mask, noise) per replica's "
                      "sub-batch instead of one for the whole batch")
        return f"{self.layer} ({self.layer_class}): {reason}"


def documented_differences(model: keras.Model,
                           within: tuple[str, ...] = ()) -> list[DocumentedDifference]:
    """Every layer of ``model`` (nested models searched too) that is a documented
    difference, in layer order; a random part of a layer (an ``LSTM``'s cell) is
    reported as the layer. ``within`` names the models that hold ``model``."""
    found = []
    if _draws_randomness(model):
        found.append(DocumentedDifference(model.name, type(model).__name__, RANDOMNESS,
                                          within))
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(documented_differences(layer, (*within, layer.name)))
            continue
        parts = compat.flatten_layers(layer)
        for kind, test in ((BATCH_STATISTICS, _normalises_per_batch),
                           (RANDOMNESS, _draws_randomness)):
            if any(test(part) for part in parts):
                found.append(DocumentedDifference(layer.name, type(layer).__name__, kind,
                                                  within))
    return found


def _normalises_per_batch(layer: keras.Layer) -> bool:
    # A BatchNormalization that is not trainable runs in inference mode in Keras 3.
    return isinstance(layer, keras.layers.BatchNormalization) and layer.trainable


def _draws_randomness(layer: keras.Layer) -> bool:
    if not compat.seed_generators(layer):
        return False
    rates = [getattr(layer, name) for name in _RATES
             if isinstance(getattr(layer, name, None), (int, float))]
    return not rates or any(rate > 0 for rate in rates)

"""The tables of a fidelity check: one row per weight, one row per step and metric."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from nbreplica.replicator.fidelity.difference import relative_difference

WEIGHT_COLUMNS = ["layer", "weight", "trainable", "gradient_difference",
                  "value_difference", "differs"]
STEP_COLUMNS = ["step", "metric", "one_device", "replicated", "difference", "differs"]


@dataclass(frozen=True)
class Run:
    """What one copy's training showed."""

    model: keras.Model
    """The trained model (for the replicated copy: its template)."""
    gradients: dict[int, np.ndarray]
    """``id`` of each trainable variable -> its gradient at the first step; empty when
    none was captured."""
    steps: dict[int, dict[str, float]]
    """Step number (from 1) -> the losses and metrics Keras logged after it."""


def weight_frame(plain: Run, replicated: Run, threshold: float) -> pd.DataFrame:
    """One row per weight of the (identically built) models, in the models' order."""
    owners = _owners(plain.model)
    trainable = {id(v) for v in plain.model.trainable_variables}  # frozen layers' aren't
    rows = []
    for mine, theirs in zip(plain.model.weights, replicated.model.weights):
        captured = id(mine) in plain.gradients and id(theirs) in replicated.gradients
        gradient = (relative_difference(plain.gradients[id(mine)],
                                        replicated.gradients[id(theirs)])
                    if captured else np.nan)
        value = relative_difference(mine.numpy(), theirs.numpy())
        rows.append([owners[id(mine)], mine.path, id(mine) in trainable, gradient, value,
                     bool(np.nanmax([gradient, value]) > threshold)])
    return pd.DataFrame(rows, columns=WEIGHT_COLUMNS)


def step_frame(plain: Run, replicated: Run, threshold: float) -> pd.DataFrame:
    """One row per logged step and metric of the one-device run; a metric the
    replicated run did not log is ``NaN`` there, and differs."""
    rows = []
    for step, logs in sorted(plain.steps.items()):
        theirs = replicated.steps.get(step, {})
        for metric, value in logs.items():
            other = theirs.get(metric, np.nan)
            difference = (relative_difference(value, other) if metric in theirs
                          else np.inf)
            rows.append([step, metric, value, other, difference, difference > threshold])
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def _owners(model: keras.Model) -> dict[int, str]:
    """``id`` of each weight -> the name of the layer holding it: a layer of ``model``
    or of a model nested in it (an ``LSTM``, not its cell), else ``model`` itself."""
    owners = {id(weight): model.name for weight in model.weights}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            owners.update(_owners(layer))
        else:
            owners.update((id(weight), layer.name) for weight in layer.weights)
    return owners


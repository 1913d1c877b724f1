"""``FidelityReport``: what a fidelity check found, and its verdict."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nbreplica.replicator.fidelity.documented import DocumentedDifference


@dataclass(frozen=True, repr=False)
class FidelityReport:
    """What :func:`nbreplica.check_fidelity` found: one copy of a model trained on one
    device, another replicated, from identical weights on the same batches.

    A difference counts when it exceeds :attr:`threshold`, what rounding reaches for
    the model's compute dtype. ``str(report)`` is the verdict (:attr:`verdict`)
    followed by one line per documented difference found in the model.

    **What is explained.** A documented difference (see :attr:`documented`) can reach
    every weight through the loss: a dropout mask changes the gradients of the layers
    before it as well as after it, and after the first step every weight trained by
    that loss. So when the model has documented differences, the weights and metrics
    that differ are listed but counted as explained by them; what still counts is a
    layer whose outputs differ while its inputs agree (:attr:`origins`) and that is
    not a documented layer (nor a nested model holding one). Without documented
    differences, every difference counts. :attr:`ok` is True when nothing counts.
    """

    frame: pd.DataFrame
    """One row per weight, in the model's order: ``layer`` (the innermost layer
    holding it), ``weight`` (its path), ``trainable``, ``gradient_difference`` (at the
    first step; NaN for a non-trainable weight, and for all when ``model.optimizer``
    applied none), ``value_difference`` (after the last step) and ``differs`` (either
    is above the threshold)."""
    history: pd.DataFrame
    """One row per step and logged loss or metric: ``step`` (from 1), ``metric``,
    ``one_device`` and ``replicated`` (Keras's logs after that step: means over the
    steps so far), ``difference`` and ``differs``."""
    documented: tuple[DocumentedDifference, ...]
    """The model's layers a replicated model is documented to train differently."""
    origins: tuple[str, ...] | None
    """The layers (and operations) whose outputs on the first batch differ while their
    inputs agree: where the replicated forward pass departs from one device. ``None``
    when not inspected: a model without a functional graph (a subclassed model)."""
    threshold: float
    steps: int
    devices: int

    @property
    def differing(self) -> tuple[str, ...]:
        """The layers that differ from one device: :attr:`origins`, then the layers
        whose gradients or values differ."""
        return tuple(dict.fromkeys([*(self.origins or ()), *_differing(self.frame, "layer")]))

    @property
    def differing_metrics(self) -> tuple[str, ...]:
        """The losses and metrics that differ at some step."""
        return _differing(self.history, "metric")

    @property
    def unexplained(self) -> tuple[str, ...]:
        """The differing layers and metrics that no documented difference explains."""
        if not self.documented:
            return (*self.differing, *self.differing_metrics)
        explaining = {name for found in self.documented for name in (found.layer, *found.within)}
        return tuple(name for name in self.origins or () if name not in explaining)

    @property
    def ok(self) -> bool:
        """Whether the replicated model trains like one device, but for the documented
        differences."""
        return not self.unexplained

    @property
    def max_difference(self) -> float:
        """The largest difference of any gradient, weight, loss or metric."""
        values = np.concatenate([self.frame["gradient_difference"].to_numpy(float),
                                 self.frame["value_difference"].to_numpy(float),
                                 self.history["difference"].to_numpy(float)])
        values = values[~np.isnan(values)]
        return float(values.max()) if values.size else 0.0

    @property
    def verdict(self) -> str:
        """One line: whether the model trains like one device, what differs, and the
        largest difference."""
        numbers = (f"max relative difference {_number(self.max_difference)} over "
                   f"{_count(len(self.frame), 'weight')} and "
                   f"{_count(self.history['metric'].nunique(), 'metric')} in "
                   f"{_count(self.steps, 'step')} on {self.devices} devices; rounding "
                   f"threshold {_number(self.threshold)}")
        parts = []
        if self.origins:
            parts.append(f"outputs first differ in {', '.join(self.origins)}")
        if layers := _differing(self.frame, "layer"):
            parts.append(f"gradients or values differ in {', '.join(layers)}")
        if self.differing_metrics:
            verb = "differs" if len(self.differing_metrics) == 1 else "differ"
            parts.append(f"{_listed(self.differing_metrics)} {verb}")
        if not parts:
            return f"trains like one device: {numbers}"
        if self.ok:
            return (f"trains like one device but for the documented differences below: "
                    f"{'; '.join(parts)} ({numbers})")
        if self.documented:
            parts.append("the documented differences below do not explain "
                         f"{', '.join(self.unexplained)}")
        return f"differs from one device: {'; '.join(parts)} ({numbers})"

    def __str__(self) -> str:
        return "\n".join([self.verdict, *(f"- documented: {found}" for found in self.documented)])

    def __repr__(self) -> str:
        return f"<FidelityReport ok={self.ok}: {self.verdict}>"


def _differing(rows: pd.DataFrame, column: str) -> tuple[str, ...]:
    """The distinct ``column`` values of the rows that differ, in order of rows."""
    return tuple(dict.fromkeys(rows.loc[rows["differs"], column]))


def _listed(names: tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _number(value: float) -> str:
    """Two significant digits, exponents without padding: 3.1e-7, 0.41, inf."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:.2g}")

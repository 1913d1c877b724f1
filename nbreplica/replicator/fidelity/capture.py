"""What one training run shows: the gradients its optimizer received at the first
step, and its losses and metrics after every step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class FirstGradients:
    """Keeps the gradients ``model``'s optimizer receives at its first ``apply``.

    ``optimizer.apply`` (which ``apply_gradients`` calls too) is replaced on the
    optimizer instance, so the gradients are those a template's own ``train_step``
    hands over, after everything it does to them. They are stored in variables, which
    works inside ``tf.function`` as eagerly; sparse gradients (``tf.IndexedSlices``)
    are stored dense, for comparison only: the optimizer gets them as they came.
    Install it after ``compile`` and before training; the optimizer is the check's own.
    """

    def __init__(self, model: keras.Model, variables: Sequence[keras.Variable]) -> None:
        self._stores = {id(v): tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)
                        for v in variables}
        self._order = [id(v) for v in variables]
        self._calls = tf.Variable(0, dtype=tf.int64, trainable=False)
        optimizer = model.optimizer
        own_apply = optimizer.apply

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            grads = list(grads)
            given = None if trainable_variables is None else list(trainable_variables)
            # Without variables, an optimizer applies to those it was built with: the
            # model's trainable variables, which fit builds it with.
            self._keep(grads, model.trainable_variables if given is None else given)
            return own_apply(grads, given)

        # An instance attribute shadows the class's `apply` for this optimizer only.
        object.__setattr__(optimizer, "apply", apply)

    def _keep(self, grads: list[Any], targets: list[Any]) -> None:
        first = tf.equal(self._calls, 0)
        for grad, variable in zip(grads, targets):
            store = self._stores.get(id(variable))
            if grad is not None and store is not None:
                dense = tf.cast(tf.convert_to_tensor(grad), store.dtype)
                store.assign(tf.where(first, dense, store))
        self._calls.assign_add(1)

    def values(self) -> dict[int, np.ndarray]:
        """``id`` of each variable given -> its gradient at the first ``apply`` (zeros
        if it got none); empty if the optimizer never applied any (a template that
        trains with optimizers of its own, say a GAN's)."""
        if not int(self._calls.numpy()):
            return {}
        return {key: self._stores[key].numpy() for key in self._order}


class StepLogs(keras.callbacks.Callback):
    """The logs (losses and metrics) after each training step Keras reports: every
    step, or with ``steps_per_execution=k`` every k-th."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[int, dict[str, float]] = {}
        """Step number (from 1) -> its logs."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.steps[batch + 1] = {name: float(np.asarray(value))
                                 for name, value in (logs or {}).items()}

"""Only the chief writes models: every other worker saves to a temporary folder that
is deleted at once.

Every worker trains the same weights, so one copy is enough, and workers that share a
file system would otherwise overwrite each other's files. Yet every worker must save:
reading some of a distributed model's variables is a collective operation that all
workers run together, and a worker that skipped it would leave the others waiting.
``Model.save`` and ``Model.save_weights`` are what ``model.save(...)``,
``keras.callbacks.ModelCheckpoint`` and :class:`nbreplica.TemplateCheckpoint` call; on
workers other than the chief they write under a temporary folder instead of the path
asked for. Other files (logs, plots) are the function's own: guard them with
``nbreplica.cluster.context().is_chief``.

Keras versions checked: 3.14.0 and 3.15.1. Check by behaviour: the replacement passes
the path as the first argument after the model, so :func:`save_on_chief_only` first
checks that ``Model.save`` and ``Model.save_weights`` still take ``filepath`` there,
and raises an error naming the method otherwise.
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
from collections.abc import Callable
from typing import Any

import keras

from nbreplica._errors import NbreplicaError

Save = Callable[..., Any]


def _elsewhere(save: Save) -> Save:
    @functools.wraps(save)
    def save_and_delete(self: keras.Model, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix="nbreplica-not-chief-") as folder:
            name = os.path.basename(os.fspath(filepath))
            return save(self, os.path.join(folder, name), *args, **kwargs)

    return save_and_delete


def save_on_chief_only(is_chief: bool) -> None:
    """Unless ``is_chief``, make ``Model.save`` and ``Model.save_weights`` write under a
    temporary folder, deleted as soon as they return."""
    if not is_chief:
        for save in (keras.Model.save, keras.Model.save_weights):
            _check_takes_a_path_first(save)
        keras.Model.save = _elsewhere(keras.Model.save)
        keras.Model.save_weights = _elsewhere(keras.Model.save_weights)


def _check_takes_a_path_first(save: Save) -> None:
    parameters = list(inspect.signature(save).parameters)[1:2]
    if parameters != ["filepath"]:
        raise NbreplicaError(
            f"keras.Model.{save.__name__} no longer takes the path as its first argument, "
            "so workers other than the chief cannot be kept from writing over the "
            f"chief's files. Received: keras {keras.__version__}, parameters after the "
            f"model: {parameters}"
        )

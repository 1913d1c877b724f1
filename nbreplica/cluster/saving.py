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
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from typing import Any

import keras

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
        keras.Model.save = _elsewhere(keras.Model.save)
        keras.Model.save_weights = _elsewhere(keras.Model.save_weights)

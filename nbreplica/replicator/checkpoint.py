"""Checkpoint the template, not the replicated wrapper, while training."""

from __future__ import annotations

import keras

from nbreplica.replicator.model import ReplicatedModel


class TemplateCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` that saves the template of a replicated
    model, so the checkpoint loads on any machine with plain ``keras.models.load_model``.

    Takes exactly ``ModelCheckpoint``'s arguments; monitored metrics still come from
    the replicated model's logs. On a model that is not replicated it behaves like
    ``ModelCheckpoint``.
    """

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model.template if isinstance(model, ReplicatedModel) else model)

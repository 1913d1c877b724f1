"""GPU metrics as TensorBoard scalars, written by TensorFlow's own ``tf.summary``.

The event files go to ``<log_dir>/gpus``: next to the ``train`` and ``validation`` runs
of ``keras.callbacks.TensorBoard`` given the same ``log_dir``, TensorBoard shows them as
one more run. Writing needs no ``tensorboard`` package (TensorFlow 2.21 no longer
installs it); viewing them does: ``python3 -m pip install 'nbreplica[tensorboard]'``,
then ``tensorboard --logdir LOG_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from nbreplica.tracking.series import Point

#: The run folder under ``log_dir``.
RUN = "gpus"

# What TensorBoard's scalar summaries carry, so that its scalars dashboard shows them.
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
).SerializeToString()


class EventWriter:
    """Writes :class:`~nbreplica.tracking.series.Point` values to an event file in
    ``<log_dir>/gpus``; they reach the disk on :meth:`flush` (and :meth:`close`)."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.path = Path(log_dir) / RUN
        # Events wait in memory until flush() rather than every ten events.
        self._writer = tf.summary.create_file_writer(str(self.path), max_queue=100_000,
                                                     flush_millis=3_600_000)

    def write(self, points: Sequence[Point]) -> None:
        """Queue ``points``, each at its step."""
        with self._writer.as_default():
            for point in points:
                tf.summary.write(point.name, tf.constant(point.value, tf.float32),
                                 step=point.step, metadata=_SCALAR)

    def flush(self) -> None:
        """Write what is queued to the event file."""
        self._writer.flush()

    def close(self, *, interrupted: bool = False) -> None:
        """Flush and close the event file (the same whether or not the training was
        ``interrupted``)."""
        self._writer.close()

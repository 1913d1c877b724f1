"""GPU metrics as TensorBoard scalars, in event files TensorFlow writes itself.

An event file is a TFRecord file of ``Event`` protocol buffers; each step's values go in
one event, as ``tf.summary.scalar`` would write them (a float tensor, marked for the
scalars dashboard), through ``tf.io.TFRecordWriter``: no TensorFlow op runs, so writing
costs the training it watches nearly nothing. The files go to ``<log_dir>/gpus``: next
to the ``train`` and ``validation`` runs of ``keras.callbacks.TensorBoard`` given the
same ``log_dir``, TensorBoard shows them as one more run. Writing needs no
``tensorboard`` package (TensorFlow 2.21 no longer installs it); viewing them does:
``python3 -m pip install 'nbreplica[tensorboard]'``, then ``tensorboard --logdir LOG_DIR``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.util import event_pb2

from nbreplica.tracking.series import Point

#: The run folder under ``log_dir``.
RUN = "gpus"

# What TensorBoard's scalar summaries carry, so that its scalars dashboard shows them.
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()
_files = itertools.count()


class EventWriter:
    """Writes :class:`~nbreplica.tracking.series.Point` values to an event file in
    ``<log_dir>/gpus``, one event per step; they reach the disk on :meth:`flush` (and
    :meth:`close`)."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.path = Path(log_dir) / RUN
        self.path.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads files named events.out.tfevents.*; this names them uniquely
        # per process (the workers of a cluster job may share log_dir).
        name = (f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_files)}.nbreplica")
        self._records = tf.io.TFRecordWriter(str(self.path / name))
        self._described: set[str] = set()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, points: Sequence[Point]) -> None:
        """Queue ``points``, each at its step."""
        steps: dict[int, list[Point]] = {}
        for point in points:
            steps.setdefault(point.step, []).append(point)
        for step, group in steps.items():
            values = [self._value(point) for point in group]
            self._write(event_pb2.Event(wall_time=max(p.wall_time for p in group), step=step,
                                        summary=summary_pb2.Summary(value=values)))

    def flush(self) -> None:
        """Write what is queued to the event file."""
        self._records.flush()

    def close(self, *, interrupted: bool = False) -> None:
        """Flush and close the event file (the same whether or not the training was
        ``interrupted``)."""
        self._records.close()

    def _value(self, point: Point) -> summary_pb2.Summary.Value:
        value = summary_pb2.Summary.Value(tag=point.name, tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE, float_val=[point.value]))
        if point.name not in self._described:  # TensorBoard reads it from the first value
            value.metadata.CopyFrom(_SCALAR)
            self._described.add(point.name)
        return value

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

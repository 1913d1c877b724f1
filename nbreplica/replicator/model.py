"""``ReplicatedModel``: a Keras model that runs its template data-parallel.

Every step is the template's own: ``train_step``, ``test_step``, ``predict_step``,
``compute_loss`` and ``compute_metrics`` run on the template, with the replicated
model's compile state, while the template's forward pass is swapped for the replicated
one (:mod:`nbreplica.replicator.forward`): split, each replica on its device, merge.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

from nbreplica import _keras_compat as compat
from nbreplica.accelerators import HOST_DEVICE, Accelerator
from nbreplica.replicator.forward import Placement, replicated_call
from nbreplica.replicator.placement import resolve_gpus
from nbreplica.replicator.relocation import move_variables


@keras.saving.register_keras_serializable(package="nbreplica")
class ReplicatedModel(keras.Model):
    """A Keras model that splits every batch across devices and runs ``template``
    (sharing its layers and weights) on each; made by :func:`nbreplica.replicate`.

    ``fit``, ``evaluate`` and ``predict`` run the template's own ``train_step``,
    ``test_step`` and ``predict_step`` (Keras's stock ones, or its overrides, with its
    ``compute_loss``, ``compute_metrics`` and metrics), with this model's compile
    settings; only the template's forward pass is replicated. Training it trains
    ``template``. Save ``template`` for a model that loads anywhere; saving this model
    keeps the device layout too.

    .. warning::
        ``BatchNormalization`` computes its statistics per replica (on each sub-batch)
        and updates its moving averages once per replica per step, so their effective
        momentum is ``momentum ** n_devices``.

    .. warning::
        Losses added with ``add_loss`` inside the template (and activity regularizers)
        are treated as batch means: each replica's value is weighted by its share of
        the batch.

    .. warning::
        Only calls of the template itself are replicated: a ``train_step`` that calls
        other models (say a GAN's generator and discriminator) runs those on one device.
    """

    def __init__(
        self,
        template: keras.Model,
        gpus: int | Sequence[int] | None = None,
        cpu_merge: bool = True,
        cpu_relocation: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        accelerators = resolve_gpus(gpus)
        kwargs.setdefault("dtype", template.dtype_policy)
        super().__init__(name=name or _unique_name(f"{template.name}_replicated"), **kwargs)
        if cpu_relocation:
            move_variables(template, HOST_DEVICE)
        _warn_about_synchronized_batch_normalization(template)
        self.template = template
        self.accelerators: tuple[Accelerator, ...] = tuple(accelerators)
        self.cpu_merge = bool(cpu_merge)
        self.cpu_relocation = bool(cpu_relocation)
        self.merge_device = HOST_DEVICE if cpu_merge else accelerators[0].device
        if hasattr(template, "output_names"):
            self.output_names = _deduplicated(list(template.output_names))
        # XLA would fuse the whole step into one cluster on one device and ignore
        # every per-replica placement; "auto" must stay off and True is refused.
        self.supports_jit = False
        self._replicating = False
        self.built = True

    @property
    def devices(self) -> list[str]:
        """The TensorFlow device string of each replica, in replica order."""
        return [a.device for a in self.accelerators]

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The template's metrics (its own and this model's compiled ones)."""
        with compat.lent_compile_state(self, self.template):
            return list(self.template.metrics)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        with self._replicated_template():
            return self.template(inputs, training=training)

    def train_step(self, data: Any) -> Any:
        with self._as_template():
            return self.template.train_step(data)

    def test_step(self, data: Any) -> Any:
        with self._as_template():
            return self.template.test_step(data)

    def predict_step(self, data: Any) -> Any:
        with self._as_template():
            return self.template.predict_step(data)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        with self._as_template():
            return compat.compute_loss(self.template, x=x, y=y, y_pred=y_pred,
                                       sample_weight=sample_weight, training=training)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any,
                        sample_weight: Any = None) -> Any:
        with self._as_template():
            return self.template.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": keras.saving.serialize_keras_object(self.template),
            "gpus": [a.index for a in self.accelerators],
            "cpu_merge": self.cpu_merge,
            "cpu_relocation": self.cpu_relocation,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "ReplicatedModel":
        config = dict(config)
        resolve_gpus(config["gpus"], caller="load a saved ReplicatedModel")
        template = keras.saving.deserialize_keras_object(
            config.pop("template"), custom_objects=custom_objects
        )
        return cls(template, **config)

    @contextlib.contextmanager
    def _as_template(self) -> Iterator[None]:
        """The template's hooks run as this model's: with its compile state, its
        forward pass replicated, and the loss computed on the merge device."""
        with tf.device(self.merge_device), compat.lent_compile_state(self, self.template), \
                self._replicated_template():
            yield

    @contextlib.contextmanager
    def _replicated_template(self) -> Iterator[None]:
        """Within the context, calling the template runs it on every replica."""
        if self._replicating:
            yield
            return
        template = self.template
        placement = Placement(self.accelerators, self.merge_device)
        own_call = template.call

        def call(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            if args:
                raise TypeError(
                    "A replicated template's call takes its inputs as the one positional "
                    f"argument. Received: {len(args)} more positional arguments")
            return replicated_call(template, own_call, inputs, kwargs, placement)

        # An instance attribute shadows the class's `call` for this template only.
        object.__setattr__(template, "call", call)
        self._replicating = True
        try:
            yield
        finally:
            object.__delattr__(template, "call")
            self._replicating = False


def _warn_about_synchronized_batch_normalization(template: keras.Model) -> None:
    synchronized = [layer.name for layer in compat.flatten_layers(template)
                    if isinstance(layer, keras.layers.BatchNormalization)
                    and getattr(layer, "synchronized", False)]
    if synchronized:
        warnings.warn(
            "A replicated model computes BatchNormalization statistics per replica (on "
            "each replica's sub-batch), also for layers made with synchronized=True, "
            "which only synchronizes under a tf.distribute strategy. Received: "
            f"synchronized BatchNormalization layers {synchronized} in model "
            f"{template.name!r}",
            stacklevel=3,
        )


def _unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (as Keras names layers)."""
    uid = keras.backend.get_uid(base)
    return base if uid == 1 else f"{base}_{uid - 1}"


def _deduplicated(names: list[str]) -> list[str]:
    """Output names made unique (``out``, ``out_1``, ...), as Keras requires them to be."""
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        if name in counts:
            counts[name] += 1
            unique.append(f"{name}_{counts[name]}")
        else:
            counts[name] = 0
            unique.append(name)
    return unique

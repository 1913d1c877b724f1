"""``ReplicatedModel``: a Keras model that runs its template data-parallel.

Each step follows four named stages: **split** the batch on the host, **replicate**
(every device runs the one shared template), **apply** the backward pass on each
replica's own device, **merge** outputs (and gradients) on the merge device.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from nbreplica._errors import ReplicaError
from nbreplica.accelerators import HOST_DEVICE, Accelerator
from nbreplica.replicate import plan as batch_plan
from nbreplica.replicate.placement import resolve_gpus
from nbreplica.replicate.relocation import move_variables


@dataclass
class _Replica:
    """One replica's share of a step: its device, outputs, loss and tape."""

    device: str
    flat_outputs: list[tf.Tensor]
    call_loss: tf.Tensor | None
    tape: tf.GradientTape | None

    def differentiable(self) -> list[tf.Tensor]:
        """The outputs and call loss that a gradient can flow back through."""
        tensors = [t for t in self.flat_outputs if t.dtype.is_floating]
        return tensors + ([self.call_loss] if self.call_loss is not None else [])


@dataclass
class _ReplicaRun:
    """The replicas of one step, and how to merge them."""

    plan: batch_plan.BatchPlan
    output_structure: Any
    replicas: list[_Replica]
    merge_device: str

    def merged_outputs(self) -> Any:
        with tf.device(self.merge_device):
            per_output = zip(*(r.flat_outputs for r in self.replicas))
            merged = [batch_plan.merge(list(parts), self.plan) for parts in per_output]
        return tf.nest.pack_sequence_as(self.output_structure, merged)


class _LastStep:
    """Holds the weighted per-replica call losses (``add_loss``, activity
    regularizers) of the latest forward pass, read by ``ReplicatedModel.losses``."""

    def __init__(self) -> None:
        self.call_losses: list[tf.Tensor] = []


@keras.saving.register_keras_serializable(package="nbreplica")
class ReplicatedModel(keras.Model):
    """A Keras model that splits every batch across devices and runs ``template``
    (sharing its layers and weights) on each; made by :func:`nbreplica.replicate`.

    Training it trains ``template``. Save ``template`` for a model that loads anywhere;
    saving this model keeps the device layout too.

    .. warning::
        ``BatchNormalization`` computes its statistics per replica (on each sub-batch)
        and updates its moving averages once per replica per step, so their effective
        momentum is ``momentum ** n_devices``.

    .. warning::
        Losses added with ``add_loss`` inside the template (and activity regularizers)
        are treated as batch means: each replica's value is weighted by its share of
        the batch.
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
        super().__init__(name=name or f"{template.name}_replicated", **kwargs)
        if cpu_relocation:
            move_variables(template, HOST_DEVICE)
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
        self._last_step = _LastStep()
        self.built = True

    @property
    def devices(self) -> list[str]:
        """The TensorFlow device string of each replica, in replica order."""
        return [a.device for a in self.accelerators]

    @property
    def losses(self) -> list[tf.Tensor]:
        """The latest forward pass's weighted replica losses plus weight regularizers."""
        regularization = [v.regularizer(v) for v in self._regularized_weights()]
        return [*self._last_step.call_losses, *regularization]

    def _regularized_weights(self) -> list[Any]:
        return [v for v in self.template.trainable_weights
                if getattr(v, "regularizer", None) is not None]

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self._run_replicas(inputs, training, record_gradients=False).merged_outputs()

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        run = self._run_replicas(x, training=True, record_gradients=True)
        weights = self.trainable_weights
        with tf.device(self.merge_device):
            with tf.GradientTape() as merge_tape:
                watched = [t for r in run.replicas for t in r.differentiable()]
                merge_tape.watch(watched)
                y_pred = run.merged_outputs()
                loss = self._compute_loss(
                    x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
                )
                self._loss_tracker.update_state(loss, sample_weight=run.plan.batch_size)
                if self.optimizer is not None:
                    loss = self.optimizer.scale_loss(loss)
            if not weights:
                warnings.warn("The model does not have any trainable weights.")
                return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
            upstream = merge_tape.gradient(loss, watched + weights)
        gradients = _replica_gradients(run, dict(zip(map(id, watched), upstream)), weights)
        direct = upstream[len(watched):]  # weight regularizers, computed on the merge side
        total = [_sum_on_variable_device(v, parts + [d]) for v, parts, d
                 in zip(weights, gradients, direct)]
        self.optimizer.apply_gradients(zip(total, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

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
        template = keras.saving.deserialize_keras_object(
            config.pop("template"), custom_objects=custom_objects
        )
        return cls(template, **config)

    def _run_replicas(self, inputs: Any, training: bool | None,
                      record_gradients: bool) -> _ReplicaRun:
        flat_inputs = tf.nest.flatten(inputs)
        count = len(self.accelerators)
        with tf.device(HOST_DEVICE):
            plan = batch_plan.make_plan(batch_plan.batch_size_of(flat_inputs), count)
            shards = [batch_plan.split(t, plan, count) for t in flat_inputs]
        seen_losses: set[int] = set()
        replicas = []
        output_structure = None
        for i, accelerator in enumerate(self.accelerators):
            shard = tf.nest.pack_sequence_as(inputs, [s[i] for s in shards])
            tape = tf.GradientTape() if record_gradients else None
            with tf.device(accelerator.device), tf.name_scope(f"replica_{i}"):
                with tape or contextlib.nullcontext():
                    try:
                        outputs = self.template(shard, training=training)
                    except Exception as exc:
                        raise ReplicaError(
                            f"Caught {type(exc).__name__} in replica {i} on device "
                            f"{accelerator.device} ({accelerator.name}): {exc}"
                        ) from exc
                    call_loss = self._new_call_loss(seen_losses, plan.weights[i])
            output_structure = outputs
            replicas.append(_Replica(accelerator.device, tf.nest.flatten(outputs),
                                     call_loss, tape))
        self._last_step.call_losses = [r.call_loss for r in replicas if r.call_loss is not None]
        return _ReplicaRun(plan, output_structure, replicas, self.merge_device)

    def _new_call_loss(self, seen: set[int], weight: tf.Tensor) -> tf.Tensor | None:
        """The losses the template added during the replica call just made (not the
        weight regularizers, which ``losses`` counts once), weighted by ``weight``."""
        regularized = len(self._regularized_weights())
        all_losses = self.template.losses
        added = [loss for loss in all_losses[: len(all_losses) - regularized]
                 if id(loss) not in seen]
        seen.update(map(id, added))
        if not added:
            return None
        total = tf.add_n([tf.cast(tf.reduce_sum(loss), tf.float32) for loss in added])
        return total * weight


def _replica_gradients(run: _ReplicaRun, upstream: dict[int, tf.Tensor | None],
                       weights: list[Any]) -> list[list[tf.Tensor | None]]:
    """Back-propagate each replica on its own device, seeded with the gradients that
    flowed back from the merge; returns, per weight, one gradient per replica."""
    per_weight: list[list[tf.Tensor | None]] = [[] for _ in weights]
    for replica in run.replicas:
        targets = replica.differentiable()
        # An output without a loss gets no gradient; None would be read as ones.
        seeds = [upstream[id(t)] if upstream[id(t)] is not None else tf.zeros_like(t)
                 for t in targets]
        with tf.device(replica.device):
            grads = replica.tape.gradient(targets, weights, output_gradients=seeds)
        for parts, grad in zip(per_weight, grads):
            parts.append(grad)
    return per_weight


def _sum_on_variable_device(variable: Any, parts: list[tf.Tensor | None]) -> tf.Tensor | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    with tf.device(variable.value.device):
        return tf.add_n([tf.convert_to_tensor(p) for p in present])


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

"""The replicated forward pass as one differentiable operation.

**Split** the batch on the host, run each **replica**'s forward pass on its device,
**merge** the outputs (and their Keras masks) on the merge device. Its gradient
**applies** each replica's backward pass on that replica's device, seeded with the
replica's share of the output gradients, and combines the replicas' weight gradients
(see :mod:`nbreplica.replicator.gradients`). Whatever computes the loss and applies the
gradients around it — Keras's stock ``train_step`` or a template's own — runs
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from nbreplica import _keras_compat as compat
from nbreplica import _tf_compat as tf_compat
from nbreplica._errors import ReplicaError
from nbreplica.accelerators import HOST_DEVICE, Accelerator
from nbreplica.replicator import plan as batch_plan
from nbreplica.replicator.gradients import combine_gradients


@dataclass(frozen=True)
class Placement:
    """Where the replicas run (in replica order) and where their outputs merge."""

    accelerators: tuple[Accelerator, ...]
    merge_device: str


@dataclass
class _Replica:
    """One replica's forward pass, kept for its backward pass."""

    index: int
    device: str
    tape: tf.GradientTape
    arguments: list[int]  # positions, among the operation's arguments, of its inputs
    inputs: list[tf.Tensor]  # its differentiable input shards, in that order
    structure: Any  # its outputs, as the template returned them
    call_loss: tf.Tensor | None  # its add_loss total, weighted by its batch share

    @property
    def outputs(self) -> list[Any]:
        return tf.nest.flatten(self.structure)

    def targets(self) -> list[tf.Tensor]:
        """What a gradient flows back from: floating outputs, then the call loss."""
        tensors = [t for t in self.outputs if _is_float(t)]
        return tensors + ([self.call_loss] if self.call_loss is not None else [])


def replicated_call(template: keras.Model, call: Callable[..., Any], inputs: Any,
                    kwargs: dict[str, Any], placement: Placement) -> Any:
    """``call(inputs, **kwargs)`` (``template``'s own ``call``), run data-parallel.

    Losses the replicas add (``add_loss``, activity regularizers) end up on
    ``template`` as one loss: their sum, each weighted by its replica's batch share.
    """
    count = len(placement.accelerators)
    flat_inputs = tf.nest.flatten(inputs)
    mask = kwargs.get("mask")
    with tf.device(HOST_DEVICE):
        plan = batch_plan.make_plan(batch_plan.batch_size_of(flat_inputs), count)
        input_shards = [batch_plan.split(t, plan, count) for t in flat_inputs]
        mask_shards = [batch_plan.split(m, plan, count) for m in tf.nest.flatten(mask)]
    # The operation's arguments: the shards of every input a gradient is taken
    # through, replica-major. Data fed to the model needs none: leaving it out spares
    # each replica's backward pass its first layer's input gradient, which the
    # template on one device does not compute either.
    watched = [k for k, t in enumerate(flat_inputs)
               if _is_float(t) and tf_compat.is_watched(t)]
    positions: dict[tuple[int, int], int] = {}
    arguments: list[tf.Tensor] = []
    for i in range(count):
        for k in watched:
            positions[i, k] = len(arguments)
            arguments.append(input_shards[k][i])
    replicas: list[_Replica] = []
    merged_masks: list[Any] = []

    @tf.custom_gradient
    def forward(*differentiable: tf.Tensor) -> Any:
        for i, accelerator in enumerate(placement.accelerators):
            own = [positions[i, k] for k in range(len(input_shards)) if (i, k) in positions]
            shard = [differentiable[positions[i, k]] if (i, k) in positions else shards[i]
                     for k, shards in enumerate(input_shards)]
            replica_kwargs = dict(kwargs)
            if mask is not None:
                replica_kwargs["mask"] = tf.nest.pack_sequence_as(
                    mask, [m[i] for m in mask_shards])
            replicas.append(_run_replica(
                i, accelerator, template, call, tf.nest.pack_sequence_as(inputs, shard),
                replica_kwargs, plan.weights[i], own, [differentiable[p] for p in own]))
        with tf.device(placement.merge_device), tf.name_scope("merge"):
            merged = [batch_plan.merge(list(parts), plan)
                      for parts in zip(*(r.outputs for r in replicas))]
            merged_masks.extend(_merged_masks(replicas, plan))
            losses = [r.call_loss for r in replicas if r.call_loss is not None]
            results = merged + ([tf.add_n(losses)] if losses else [])

        def backward(*upstream: tf.Tensor | None,
                     variables: Sequence[tf.Variable] | None = None) -> Any:
            return _backward(replicas, plan, placement, upstream, len(arguments),
                             list(variables or []))

        return results, backward

    results = forward(*arguments)
    outputs = results[: len(merged_masks)]
    for output, merged_mask in zip(outputs, merged_masks):
        if merged_mask is not None:
            compat.set_mask(output, merged_mask)
    compat.clear_call_losses(template)
    if len(results) > len(outputs):
        compat.add_call_loss(template, results[-1])
    return tf.nest.pack_sequence_as(replicas[0].structure, outputs)


def _run_replica(index: int, accelerator: Accelerator, template: keras.Model,
                 call: Callable[..., Any], shard: Any, kwargs: dict[str, Any],
                 weight: tf.Tensor, arguments: list[int],
                 differentiable: list[tf.Tensor]) -> _Replica:
    # Persistent: a step may ask for gradients more than once.
    tape = tf.GradientTape(persistent=True)
    with tf.device(accelerator.device), tf.name_scope(f"replica_{index}"), tape:
        tape.watch(differentiable)
        compat.clear_call_losses(template)
        try:
            outputs = call(shard, **kwargs)
        except Exception as exc:
            raise ReplicaError(
                f"Caught {type(exc).__name__} in replica {index} on device "
                f"{accelerator.device} (GPU {accelerator.index}, {accelerator.name}): {exc}"
            ) from exc
        call_loss = _added_loss(template, weight)
    return _Replica(index, accelerator.device, tape, arguments, differentiable, outputs,
                    call_loss)


def _added_loss(template: keras.Model, weight: tf.Tensor) -> tf.Tensor | None:
    """The losses the template added in the call just made, weighted by ``weight``.

    ``template.losses`` lists the call losses first, then one loss per regularized
    weight, which the template's loss counts once, not once per replica.
    """
    regularized = sum(getattr(v, "regularizer", None) is not None
                      for v in template.trainable_weights)
    losses = template.losses
    added = losses[: len(losses) - regularized]
    if not added:
        return None
    total = tf.add_n([tf.cast(tf.reduce_sum(loss), tf.float32) for loss in added])
    return total * weight


def _merged_masks(replicas: list[_Replica], plan: batch_plan.BatchPlan) -> list[Any]:
    """Per flat output, the replicas' masks merged like the output, or ``None``."""
    merged = []
    for parts in zip(*(r.outputs for r in replicas)):
        masks = [compat.get_mask(p) for p in parts]
        if any(m is None for m in masks):
            merged.append(None)
        else:
            merged.append(batch_plan.merge(masks, plan))
    return merged


def _backward(replicas: list[_Replica], plan: batch_plan.BatchPlan, placement: Placement,
              upstream: Sequence[tf.Tensor | None], argument_count: int,
              variables: list[tf.Variable]) -> Any:
    """Each replica's backward pass on its device: the gradients of the forward
    operation's arguments and of the ``variables`` it read."""
    with tf.device(placement.merge_device):
        seeds = _split_upstream(replicas, plan, upstream)
    argument_grads: list[tf.Tensor | None] = [None] * argument_count
    variable_grads: list[list[Any]] = []
    for replica, replica_seeds in zip(replicas, seeds):
        with tf.device(replica.device), tf.name_scope(f"replica_{replica.index}"):
            grads = replica.tape.gradient(
                replica.targets(), replica.inputs + variables, output_gradients=replica_seeds)
        for position, grad in zip(replica.arguments, grads):
            argument_grads[position] = grad
        variable_grads.append(grads[len(replica.inputs):])
    if not variables:
        return argument_grads
    return argument_grads, combine_gradients(variable_grads, variables)


def _split_upstream(replicas: list[_Replica], plan: batch_plan.BatchPlan,
                    upstream: Sequence[tf.Tensor | None]) -> list[list[tf.Tensor]]:
    """Per replica, the gradient seeds of its targets: its rows of each output's
    gradient (zeros where an output got none), then its call loss's gradient."""
    count = len(replicas)
    seeds: list[list[tf.Tensor]] = [[] for _ in replicas]
    float_outputs = [k for k, t in enumerate(replicas[0].outputs) if _is_float(t)]
    for k in float_outputs:
        gradient = upstream[k]
        if gradient is None:
            parts = [tf.zeros_like(r.outputs[k]) for r in replicas]
        elif gradient.shape.rank == 0:
            parts = [gradient * tf.cast(plan.weights[i], gradient.dtype) for i in range(count)]
        else:
            parts = batch_plan.split(gradient, plan, count)
        for replica_seeds, part in zip(seeds, parts):
            replica_seeds.append(part)
    if replicas[0].call_loss is not None:
        gradient = upstream[len(replicas[0].outputs)]
        for replica_seeds, replica in zip(seeds, replicas):
            replica_seeds.append(tf.zeros_like(replica.call_loss) if gradient is None
                                 else gradient)
    return seeds


def _is_float(tensor: Any) -> bool:
    return tensor is not None and tf.is_tensor(tensor) and tensor.dtype.is_floating

"""The replicated forward pass as one differentiable operation.

:func:`replicated_call` reads as its stages: **scatter** the batch on the host, run each
**replica**'s forward pass on its device, **gather** the outputs (and their Keras masks
and added losses) on the merge device. Its gradient runs each replica's **backward**
pass on that replica's device, seeded with the replica's rows of the output gradients,
and combines the replicas' weight gradients (see :mod:`nbreplica.replicator.gradients`).
Whatever computes the loss and applies the gradients around it — Keras's stock
``train_step`` or a template's own — runs unchanged.

A gradient of that gradient (a gradient penalty: the backward pass runs while another
tape records) is taken by running the replicas' forward passes again inside the
backward pass, where the recording tape sees them. The reruns replay the first passes:
each starts from the non-trainable state (moving averages, random seeds) its first pass
started from, and what they would update is dropped, so a ``BatchNormalization``
updates its moving averages once per replica and a random layer draws the same numbers
its first pass drew.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf

from nbreplica import _keras_compat as compat
from nbreplica import _tf_compat as tf_compat
from nbreplica._errors import ReplicaError
from nbreplica.gpus.available import HOST_DEVICE, Accelerator
from nbreplica.replicator import plan as batch_plan
from nbreplica.replicator.gradients import combine_gradients

_replica_depth = threading.local()


@dataclass(frozen=True)
class Placement:
    """Where the replicas run (in replica order), where their outputs merge, and each
    replica's share of the batch (``None``: even)."""

    accelerators: tuple[Accelerator, ...]
    merge_device: str
    shares: tuple[float, ...] | None = None


def inside_replica() -> bool:
    """Whether this thread is running one replica's forward pass (where a model's calls
    run as they are, on that replica's device)."""
    return getattr(_replica_depth, "value", 0) > 0


def has_batch(inputs: Any) -> bool:
    """Whether ``inputs`` hold a tensor with a batch axis to split."""
    return batch_plan.batch_size_of(tf.nest.flatten(inputs)) is not None


@dataclass
class _Scattered:
    """The batch laid out over the replicas."""

    plan: batch_plan.BatchPlan
    shards: list[list[Any]]  # shards[k][i]: replica i's rows of flat input k
    mask_shards: list[list[Any]]  # the same for the flat ``mask`` argument
    watched: list[int]  # the flat inputs a gradient is taken through

    def arguments(self) -> list[tf.Tensor]:
        """The differentiable operation's arguments: the shards of every watched input,
        replica-major."""
        return [self.shards[k][i] for i in range(len(self.shards[0])) for k in self.watched]

    def positions(self, replica: int) -> list[int]:
        """The positions of ``replica``'s shards among :meth:`arguments`."""
        start = replica * len(self.watched)
        return list(range(start, start + len(self.watched)))


@dataclass
class _Replica:
    """One replica's forward pass, kept for its backward pass."""

    index: int
    device: str
    tape: tf.GradientTape | None  # None in a traced step, whose graph is differentiated
    inputs: list[tf.Tensor]  # its differentiable shards (the watched inputs' rows)
    shard: list[Any]  # every flat input's rows, as it was called on them
    structure: Any  # its outputs, as the template returned them
    call_loss: tf.Tensor | None  # its add_loss total, aggregated as Keras does

    @property
    def outputs(self) -> list[Any]:
        return tf.nest.flatten(self.structure)

    def logit_outputs(self) -> list[int]:
        """The outputs computed by a softmax or sigmoid from logits, which Keras's
        cross-entropy losses read instead of the probabilities."""
        return [k for k, t in enumerate(self.outputs) if _logits_of(t) is not None]

    def merged(self) -> list[Any]:
        """What is merged across replicas: the outputs, then the logits of
        :meth:`logit_outputs`."""
        outputs = self.outputs
        return outputs + [_logits_of(outputs[k]) for k in self.logit_outputs()]

    def targets(self) -> list[tf.Tensor]:
        """What a gradient flows back from: the floating merged tensors, then the call
        loss."""
        tensors = [t for t in self.merged() if _is_float(t)]
        return tensors + ([self.call_loss] if self.call_loss is not None else [])

    def gradients(self, sources: list[Any], seeds: list[tf.Tensor]) -> list[Any]:
        """The gradients of :meth:`targets`, seeded with ``seeds``, for ``sources``."""
        if self.tape is None:
            return tf.gradients(self.targets(), sources, grad_ys=seeds)
        return self.tape.gradient(self.targets(), sources, output_gradients=seeds)


@dataclass
class _Call:
    """One replicated call: its inputs, where it runs, and what the backward needs."""

    model: keras.Model
    call: Callable[..., Any]
    inputs: Any
    kwargs: dict[str, Any]
    placement: Placement
    scattered: _Scattered
    replicas: list[_Replica] = field(default_factory=list)
    merged_loss: tf.Tensor | None = None
    state_before: list[tuple[keras.Variable, tf.Tensor]] = field(default_factory=list)
    """The model's non-trainable variables and their values before the first replica
    ran: where a rerun of the replicas starts from."""


def replicated_call(model: keras.Model, call: Callable[..., Any], inputs: Any,
                    kwargs: dict[str, Any], placement: Placement) -> Any:
    """``call(inputs, **kwargs)`` (``model``'s own ``call``), run data-parallel.

    Losses the replicas add (``add_loss``, activity regularizers) end up on ``model``
    as one loss, aggregated as Keras aggregates them on one device (see
    :func:`_call_loss`).
    """
    state = _Call(model, call, inputs, kwargs, placement,
                  _scatter(inputs, kwargs.get("mask"), placement),
                  state_before=[(v, tf.identity(v.value)) for v in model.non_trainable_variables])

    @tf.custom_gradient
    def forward(*arguments: tf.Tensor) -> Any:
        # In a traced step no outer tape needs to record the replicas: the backward
        # pass below is their gradient. Unrecorded, control flow (an RNN's loop) is
        # traced once, not wrapped again for a tape's gradient of a gradient.
        with tf_compat.unrecorded_when_traced():
            state.replicas = [
                _run_replica(state, i, [arguments[p] for p in state.scattered.positions(i)])
                for i in range(len(placement.accelerators))]
            results = _gather(state)

        def backward(*upstream: tf.Tensor | None,
                     variables: Sequence[tf.Variable] | None = None) -> Any:
            return _backward(state, arguments, upstream, list(variables or []))

        return results, backward

    results = forward(*state.scattered.arguments())
    return _attach(state, list(results))


def _scatter(inputs: Any, mask: Any, placement: Placement) -> _Scattered:
    """Plan the split of the batch and split every input (and mask) on the host."""
    flat_inputs = tf.nest.flatten(inputs)
    count = len(placement.accelerators)
    with tf.device(HOST_DEVICE):
        plan = batch_plan.make_plan(batch_plan.batch_size_of(flat_inputs), count,
                                    placement.shares)
        shards = [batch_plan.split(t, plan, count) for t in flat_inputs]
        mask_shards = [batch_plan.split(m, plan, count) for m in tf.nest.flatten(mask)]
    # Data fed to the model needs no gradient: leaving it out spares each replica's
    # backward pass its first layer's input gradient, which the template on one
    # device does not compute either.
    watched = [k for k, t in enumerate(flat_inputs)
               if _is_float(t) and tf_compat.is_watched(t)]
    return _Scattered(plan, shards, mask_shards, watched)


def _run_replica(state: _Call, index: int, differentiable: Any) -> _Replica:
    """Replica ``index``'s forward pass on its device, with its watched shards replaced
    by ``differentiable``: run eagerly, under its own tape; traced, the graph is
    differentiated instead."""
    accelerator = state.placement.accelerators[index]
    scattered = state.scattered
    inputs = list(differentiable)
    shard = [shards[index] for shards in scattered.shards]
    for k, tensor in zip(scattered.watched, inputs):
        shard[k] = tensor
    kwargs = dict(state.kwargs)
    if "mask" in kwargs and kwargs["mask"] is not None:
        kwargs["mask"] = tf.nest.pack_sequence_as(
            kwargs["mask"], [m[index] for m in scattered.mask_shards])
    # Persistent: a step may ask for gradients more than once.
    tape = tf.GradientTape(persistent=True) if tf.executing_eagerly() else None
    with tf.device(accelerator.device), tf.name_scope(f"replica_{index}"), \
            tape or contextlib.nullcontext(), _replica_running():
        if tape is not None:
            tape.watch(inputs)
        compat.clear_call_losses(state.model)
        try:
            outputs = state.call(tf.nest.pack_sequence_as(state.inputs, shard), **kwargs)
        except Exception as exc:
            raise ReplicaError(
                f"Caught {type(exc).__name__} in replica {index} on device "
                f"{accelerator.device} (GPU {accelerator.index}, {accelerator.name}) "
                f"running {state.model.name!r}: {exc}"
            ) from exc
        call_loss = _call_loss(state.model, scattered.plan, index)
    return _Replica(index, accelerator.device, tape, inputs, shard, outputs, call_loss)


@contextlib.contextmanager
def _replica_running() -> Iterator[None]:
    _replica_depth.value = getattr(_replica_depth, "value", 0) + 1
    try:
        yield
    finally:
        _replica_depth.value -= 1


def _call_loss(model: keras.Model, plan: batch_plan.BatchPlan,
               index: int) -> tf.Tensor | None:
    """The losses ``model`` added in the replica's call, as this replica's part of
    the batch's total.

    Keras sums every added loss tensor. One whose first axis has the replica's row count
    holds a value per sample: its real rows are summed. Any other (a scalar, usually a
    batch mean) is this replica's value of a per-batch quantity: it is weighted by the
    replica's share of the batch. ``model.losses`` lists the call losses first, then
    one loss per regularized weight, which the template's loss counts once, not once
    per replica.
    """
    regularized = sum(getattr(v, "regularizer", None) is not None
                      for v in model.trainable_weights)
    losses = model.losses
    added = losses[: len(losses) - regularized]
    if not added:
        return None
    parts = []
    for loss in added:
        loss = tf.cast(loss, tf.float32)
        batch_mean = tf.reduce_sum(loss) * plan.weights[index]
        if loss.shape.rank == 0:
            parts.append(batch_mean)
            continue
        per_sample = tf.equal(tf.shape(loss)[0], plan.sizes[index])
        parts.append(tf.where(per_sample, tf.reduce_sum(loss[: plan.real_rows[index]]),
                              batch_mean))
    return tf.add_n(parts)


def _gather(state: _Call) -> list[tf.Tensor]:
    """The replicas' outputs merged on the merge device, then their added loss."""
    replicas, plan = state.replicas, state.scattered.plan
    with tf.device(state.placement.merge_device), tf.name_scope("merge"):
        merged = [batch_plan.merge(list(parts), plan)
                  for parts in zip(*(r.merged() for r in replicas))]
        losses = [r.call_loss for r in replicas if r.call_loss is not None]
        return merged + ([tf.add_n(losses)] if losses else [])


def _attach(state: _Call, results: list[tf.Tensor]) -> Any:
    """The merged outputs, in the template's structure, with their merged Keras masks
    and logits; the merged added loss goes onto the model."""
    first = state.replicas[0]
    count, logit_outputs = len(first.outputs), first.logit_outputs()
    outputs = results[:count]
    with tf.device(state.placement.merge_device):
        for k, logits in zip(logit_outputs, results[count:count + len(logit_outputs)]):
            outputs[k] = _with_logits(first.outputs[k], outputs[k], logits)
        for output, parts in zip(outputs, zip(*(r.outputs for r in state.replicas))):
            masks = [compat.get_mask(p) for p in parts]
            if all(m is not None for m in masks):
                compat.set_mask(output, batch_plan.merge(masks, state.scattered.plan))
    has_loss = len(results) > count + len(logit_outputs)
    state.merged_loss = results[-1] if has_loss else None
    _restore_call_loss(state)
    return tf.nest.pack_sequence_as(first.structure, outputs)


#: The activation ops whose input Keras's cross-entropy losses read as logits.
_ACTIVATIONS = {"Softmax": tf.nn.softmax, "Sigmoid": tf.sigmoid}


def _logits_of(tensor: Any) -> tf.Tensor | None:
    """The logits a softmax or sigmoid ``tensor`` was computed from, where Keras's
    losses would find them: Keras's ``_keras_logits``, or the input of the op."""
    logits = getattr(tensor, "_keras_logits", None)
    if logits is None and tf.is_tensor(tensor) and hasattr(tensor, "op") \
            and tensor.op.type in _ACTIVATIONS:
        logits = tensor.op.inputs[0]
    return logits


def _with_logits(part: Any, merged: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """``merged`` as one device would give it: carrying its merged ``logits`` the way
    each replica's ``part`` carried its own."""
    if hasattr(part, "_keras_logits"):
        merged._keras_logits = logits
        return merged
    return _ACTIVATIONS[part.op.type](logits)


def _restore_call_loss(state: _Call) -> None:
    compat.clear_call_losses(state.model)
    if state.merged_loss is not None:
        compat.add_call_loss(state.model, state.merged_loss)


def _backward(state: _Call, arguments: Sequence[tf.Tensor],
              upstream: Sequence[tf.Tensor | None], variables: list[tf.Variable]) -> Any:
    """Each replica's backward pass on its device: the gradients of the forward
    operation's arguments and of the ``variables`` it read."""
    replicas = state.replicas
    with tf.device(state.placement.merge_device):
        seeds = _split_upstream(replicas, state.scattered.plan, upstream)
    if tf_compat.is_recording():
        replicas = _rerun_replicas(state, arguments)
    argument_grads: list[tf.Tensor | None] = []
    variable_grads: list[list[Any]] = []
    for replica, replica_seeds in zip(replicas, seeds):
        with tf.device(replica.device), tf.name_scope(f"replica_{replica.index}"):
            grads = replica.gradients(replica.inputs + variables, replica_seeds)
        argument_grads.extend(grads[: len(replica.inputs)])
        variable_grads.append(grads[len(replica.inputs):])
    if not variables:
        return argument_grads
    return argument_grads, combine_gradients(variable_grads, variables,
                                             [r.shard for r in replicas])


def _rerun_replicas(state: _Call, arguments: Sequence[tf.Tensor]) -> list[_Replica]:
    """The replicas' forward passes run again from the operation's own arguments, so
    that a tape recording the backward pass sees how it depends on the weights and
    inputs: in turn, each from the non-trainable state the one before left (the first
    from the state before the first passes), its own updates kept from the variables."""
    variables = [variable for variable, _ in state.state_before]
    values = [value for _, value in state.state_before]
    replicas = []
    for i in range(len(state.replicas)):
        with keras.StatelessScope(state_mapping=list(zip(variables, values)),
                                  collect_losses=True) as replay:
            replicas.append(
                _run_replica(state, i, [arguments[p] for p in state.scattered.positions(i)]))
        values = [replay.get_current_value(variable) for variable in variables]
    _restore_call_loss(state)
    return replicas


def _split_upstream(replicas: list[_Replica], plan: batch_plan.BatchPlan,
                    upstream: Sequence[tf.Tensor | None]) -> list[list[tf.Tensor]]:
    """Per replica, the gradient seeds of its targets: its rows of each merged
    tensor's gradient (zeros where one got none), then its call loss's gradient."""
    count = len(replicas)
    seeds: list[list[tf.Tensor]] = [[] for _ in replicas]
    merged = replicas[0].merged()
    for k in [k for k, t in enumerate(merged) if _is_float(t)]:
        gradient = upstream[k]
        if gradient is None:
            parts = [tf.zeros_like(r.merged()[k]) for r in replicas]
        elif gradient.shape.rank == 0:
            parts = [gradient * tf.cast(plan.weights[i], gradient.dtype) for i in range(count)]
        else:
            parts = batch_plan.split_gradient(gradient, plan, count)
        for replica_seeds, part in zip(seeds, parts):
            replica_seeds.append(part)
    if replicas[0].call_loss is not None:
        gradient = upstream[len(merged)]
        for replica_seeds, replica in zip(seeds, replicas):
            replica_seeds.append(tf.zeros_like(replica.call_loss) if gradient is None
                                 else gradient)
    return seeds


def _is_float(tensor: Any) -> bool:
    return tensor is not None and tf.is_tensor(tensor) and tensor.dtype.is_floating

"""What one traced training step holds, per replica: the forecast's input (plain data).

A profile is read from a step traced over two devices (see
:mod:`nbreplica.forecasting.trace`): replica 1's work and transfers stand for every
replica's, since replicas differ only in their device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from nbreplica.forecasting.flops import Work

#: The replicas a profile's step is traced with: replica 1 stands for every replica.
TRACED_REPLICAS = 2


@dataclass(frozen=True)
class StepProfile:
    """One training step at ``per_replica_batch`` rows per replica.

    Attributes:
        per_replica_batch: Rows each replica trains on.
        replica: One replica's forward and backward pass.
        merge: The work left on the merge device for the traced replicas' rows
            (:data:`TRACED_REPLICAS` of them): the loss on the merged outputs, splitting
            their gradients (the optimizer update and the gradient sum aside); see
            :meth:`merge_of`.
        update: The optimizer's update of the weights, once per step.
        inbound: Bytes a replica receives per step, by transfer kind
            (:data:`~nbreplica.forecasting.traffic.KINDS`).
        outbound: Bytes a replica sends per step, by transfer kind.
        label_bytes: The targets of one replica's rows (sent to where the loss is).
        gradient_bytes: A replica's dense weight gradients per step: every trainable
            weight it reads, but those of ``sparse_gradient_bytes``.
        sparse_gradient_bytes: A replica's sparse weight gradients per step: the rows,
            and their indices, that it gathers from a weight it reads no other way
            (an ``Embedding``'s table); see :mod:`nbreplica.forecasting.gradients`.
        parameter_bytes: Every weight of the model.
        trace_seconds: How long tracing took.
    """

    per_replica_batch: int
    replica: Work
    merge: Work
    update: Work
    inbound: Mapping[str, int] = field(default_factory=dict)
    outbound: Mapping[str, int] = field(default_factory=dict)
    label_bytes: int = 0
    gradient_bytes: int = 0
    sparse_gradient_bytes: int = 0
    parameter_bytes: int = 0
    trace_seconds: float = 0.0

    def merge_of(self, replicas: int) -> Work:
        """The merge's work on the rows of ``replicas`` replicas (one: a single GPU's
        loss on its own rows)."""
        return self.merge.scaled(replicas / TRACED_REPLICAS)

    def at_batch(self, rows: int) -> "StepProfile":
        """This profile at another per-replica batch, assuming the replica's compute,
        the batch, the activations and the sparse gradients' rows grow in proportion
        to the rows while weights, dense gradients and the update do not (an
        estimate, for recommendations)."""
        scale = rows / self.per_replica_batch
        replica = Work({k: v * scale for k, v in self.replica.flops.items()},
                       self.replica.memory_bytes * scale, self.replica.kernels)
        grown = ("batch", "activations")
        return replace(
            self, per_replica_batch=rows, replica=replica, merge=self.merge.scaled(scale),
            inbound={k: int(v * scale) if k in grown else v for k, v in self.inbound.items()},
            outbound={k: int(v * scale) if k in grown else v for k, v in self.outbound.items()},
            label_bytes=int(self.label_bytes * scale),
            sparse_gradient_bytes=int(self.sparse_gradient_bytes * scale))

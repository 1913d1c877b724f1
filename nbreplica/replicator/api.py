"""``replicate`` / ``multi_gpu_model``: the one-line data-parallel wrapper."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from nbreplica.replicator.model import ReplicatedModel


def replicate(
    model: keras.Model,
    gpus: int | Sequence[int] | None = None,
    cpu_merge: bool = True,
    cpu_relocation: bool = False,
    shares: str | Sequence[float] | None = None,
) -> ReplicatedModel:
    """Replicate ``model`` on several devices: data parallelism in one line.

    Every input batch is split along axis 0 into one sub-batch per device (as even as
    possible: no device gets more than one extra row; or by ``shares``); each device
    runs ``model`` on
    its sub-batch, reusing its layers and weights; the outputs are concatenated along
    axis 0 in order. Forward and backward passes of each replica run on its own device.
    ``fit``, ``evaluate`` and ``predict`` run the template's own ``train_step``,
    ``test_step`` and ``predict_step`` (with its ``compute_loss``, ``compute_metrics``
    and metrics), so the replicated model trains exactly like the template.
    Training the returned model trains ``model``: save ``model`` afterwards (or use
    :class:`nbreplica.TemplateCheckpoint` during ``fit``).

    Args:
        model: A built Keras model (the template).
        gpus: ``None`` for the devices picked with the GPU picker / ``use_devices``, or
            else all devices; an int ``>= 2`` for GPUs ``0..gpus-1``; or a list of at
            least two GPU ids, e.g. ``[0, 2, 4]``. GPU ids are NVML's (as in the
            picker and ``nbreplica devices``), whatever TensorFlow numbers them.
        cpu_merge: Merge the outputs (and compute the loss) on the CPU; ``False``
            merges on the first device.
        cpu_relocation: Host the weights on the CPU. Their values are kept.
        shares: How much of each batch each device gets. ``None`` or ``"even"``: the
            same; a sequence of positive numbers, one per device (normalised), e.g.
            ``[0.5, 0.25, 0.25]`` or ``[3, 1]``; ``"memory"``: in proportion to each
            GPU's free memory (NVML, read now); ``"auto"``: in proportion to each
            device's speed, measured by timing ``model`` alone for a few steps on
            each device (nothing is trained), or, where it cannot be timed (no known
            input shapes, string inputs), from NVML's description of each GPU (CUDA
            cores x max SM clock). Rows are rounded by largest remainder, and every
            device gets at least one row. The result keeps them as ``shares`` and
            where they came from as ``shares_source``; training stays exact.

    Returns:
        A :class:`nbreplica.ReplicatedModel`, a ``keras.Model`` to compile and use
        like ``model``.

    Raises:
        TypeError: ``model`` is not a Keras model, or ``gpus`` has the wrong type.
        ValueError: ``model`` is not built; ``gpus`` asks for fewer than two devices,
            for duplicate or negative ids, for devices the machine lacks, or for GPUs
            TensorFlow cannot see (it was limited to the selection made before it
            started); ``shares`` has the wrong length or a share that is not a
            positive finite number; ``"memory"`` on devices NVML does not report.
            ``fit``, ``evaluate`` and ``predict`` refuse a batch size at which a
            share is less than one row.

    .. warning::
        A batch smaller than the device count is padded with zero rows up to one row
        per device; the padded rows are cut from the outputs and carry no gradient,
        but ``BatchNormalization`` layers in training mode see them in their
        statistics. A scalar (rank-0) model output becomes the mean of the replicas'
        values weighted by their share of the batch.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`replicate` expects a Keras model (keras.Model). "
            f"Received: model={model!r} of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            "`replicate` needs a built model, so that every replica shares its weights: "
            "give it an Input (keras.Input(shape=...)), call model.build(input_shape), "
            f"or call it once on a batch. Received: model={model.name!r} (built=False)"
        )
    return ReplicatedModel(model, gpus=gpus, cpu_merge=cpu_merge,
                           cpu_relocation=cpu_relocation, shares=shares)


multi_gpu_model = replicate

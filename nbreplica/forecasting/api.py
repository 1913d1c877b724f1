"""``nbreplica.forecast``: how a model would scale on a real multi-GPU machine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nbreplica._checks import is_number
from nbreplica.forecasting import recommend, trace
from nbreplica.forecasting.catalogue import resolve_hardware
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.profile import StepProfile
from nbreplica.forecasting.report import Forecast, forecast_frame, links_frame
from nbreplica.forecasting.step_model import Setup, forecast_step

STRATEGIES = ("split", "mirrored")
SCALINGS = ("weak", "strong")

ASSUMPTIONS = [
    "products and convolutions at 60% of the GPU's peak (float32 as TF32 where the GPU "
    "has it), memory-bound ops at 70% of its memory bandwidth, 5 us per op dispatched "
    "(on a GPU or on the host); the loss and its bookkeeping cover the rows they are given",
    "PCIe and NVLink copies at 80% of their rate, host memory at 70%; GPUs behind one "
    "PCIe switch share its uplink; copies between GPUs without peer-to-peer go through "
    "host memory",
    "split: the weights stream to the replicas during the forward pass (a third of the "
    "compute) and the gradients back during the backward pass; the batch copy, merge, "
    "gradient sum and update do not overlap; weights on the host with cpu_merge=True or "
    "cpu_relocation=True, else on the first GPU",
    "mirrored: ring all-reduce of every dense gradient (NCCL's rings over every NVLink), "
    "after the backward pass; sparse gradients (an embedding's rows) gathered on the "
    "first GPU and sent back to each, as TensorFlow does for IndexedSlices",
]
NO_INPUT = "no input pipeline: the batch is ready in host memory at each step"
INPUT = ("input pipeline: {seconds:.3g} CPU core-seconds per sample (on a core at its turbo "
         "clock), prefetched while the GPUs compute; each GPU's on its share of the host's "
         "cores ({cores:g}), which slow from the turbo clock (none busy) to the base clock "
         "(all busy) in proportion to the GPUs in use")


def forecast(model: Any, batch_size: int, devices: Sequence[int] = (1, 2, 4, 8),
             hardware: Hardware | str = "dgx-a100", strategy: str = "split",
             scaling: str = "weak", step_time: float | None = None, cpu_merge: bool = True,
             cpu_relocation: bool = False, input_cpu_seconds: float | None = None) -> Forecast:
    """Forecast how ``model``'s training step scales on ``hardware``'s GPUs.

    The step is traced, not run: ``replicate``'s step over two of this machine's
    devices (emulated ones do: ``NBREPLICA_EMULATE_GPUS=2``) gives each replica's
    work and every copy between devices, which a physical model of ``hardware`` turns
    into step times (see :mod:`nbreplica.forecasting.step_model`, and the assumptions in
    :meth:`Forecast.explain`). Everything it reports is a forecast, not a measurement.

    Args:
        model: A built, compiled Keras model.
        batch_size: Rows per device with ``scaling="weak"``; the global batch, split
            over the devices, with ``scaling="strong"``.
        devices: The GPU counts to forecast (one device is always included: it is
            the speedup's baseline).
        hardware: A :class:`nbreplica.Hardware`, or a name from
            :func:`nbreplica.hardware_catalogue`.
        strategy: ``"split"`` (:func:`nbreplica.replicate`) or ``"mirrored"``
            (``tf.distribute.MirroredStrategy`` with NCCL all-reduce).
        scaling: ``"weak"`` (fixed per-device batch) or ``"strong"`` (fixed global).
        step_time: Measured seconds of one training step of ``model`` on one GPU of
            ``hardware`` at the one-device batch; it replaces the modelled compute.
        cpu_merge, cpu_relocation: ``replicate``'s options (``"split"`` only).
        input_cpu_seconds: CPU core-seconds the input pipeline spends preparing one
            sample (decoding, augmenting), on one host core at its turbo clock; the
            forecast then shares the host's cores out between the GPUs (needs
            ``Hardware.host_cores``). ``None``: the batch is ready in host memory.

    Returns:
        A :class:`nbreplica.forecasting.report.Forecast`.

    Raises:
        TypeError, ValueError: a bad argument (the message says which and why), or a
            model whose step cannot be traced (the message says why).
    """
    machine = resolve_hardware(hardware)
    counts = _check_arguments(batch_size, devices, machine, strategy, scaling, step_time)
    _check_input(input_cpu_seconds, machine)
    trace.check_model(model)
    rows = per_replica_rows(batch_size, counts, scaling)
    profiles = {per_replica: trace.trace_split(model, per_replica, cpu_merge)
                for per_replica in sorted(set(rows.values()))}
    setup = Setup(machine, strategy, bool(cpu_merge), bool(cpu_relocation),
                  input_cpu_seconds=float(input_cpu_seconds or 0.0))
    return forecast_from_profiles(model.name, profiles, rows, setup, scaling, step_time)


def per_replica_rows(batch_size: int, counts: Sequence[int], scaling: str) -> dict[int, int]:
    """Per device count, the rows each replica trains on."""
    return {n: batch_size if scaling == "weak" else math.ceil(batch_size / n) for n in counts}


def forecast_from_profiles(model_name: str, profiles: dict[int, StepProfile],
                           rows: dict[int, int], setup: Setup, scaling: str,
                           step_time: float | None = None) -> Forecast:
    """The forecast of already traced ``profiles`` (by per-replica rows) for the
    device counts of ``rows`` (see :func:`per_replica_rows`), the first being one."""
    counts = sorted(rows)
    if step_time is not None:
        setup = _anchored(setup, profiles[rows[counts[0]]], float(step_time))
    steps = [forecast_step(profiles[rows[n]], setup, n) for n in counts]
    settings = ({"cpu_merge": setup.cpu_merge, "cpu_relocation": setup.cpu_relocation}
                if setup.strategy == "split" else {})
    last = counts[-1]
    return Forecast(
        model_name=model_name, hardware=setup.hardware, strategy=setup.strategy,
        scaling=scaling, settings=settings, frame=forecast_frame(steps),
        links=links_frame(steps),
        compute_source=_compute_source(step_time, setup),
        recommendations=recommend.recommendations(profiles[rows[last]], setup, last),
        assumptions=assumptions(setup))


def assumptions(setup: Setup) -> list[str]:
    """What a forecast with ``setup`` assumes, as its report lists it."""
    if not setup.input_cpu_seconds:
        return [*ASSUMPTIONS, NO_INPUT]
    cores = setup.hardware.host_cores_per_gpu
    return [*ASSUMPTIONS, INPUT.format(seconds=setup.input_cpu_seconds, cores=cores)]


def _anchored(setup: Setup, profile: StepProfile, step_time: float) -> Setup:
    """``setup`` with its GPU compute scaled so the one-device step takes ``step_time``."""
    modelled = forecast_step(profile, replace(setup, input_cpu_seconds=0.0), 1)
    compute = modelled.parts["compute"] + modelled.parts["merge"]
    rest = modelled.seconds - compute
    if step_time <= rest:
        raise ValueError(
            f"step_time is shorter than the forecast's one-device copies and update alone "
            f"({rest:.4g} s), so it cannot be a step of this model at this batch on "
            f"{setup.hardware.name}. Received: step_time={step_time!r}")
    return replace(setup, compute_scale=(step_time - rest) / compute)


def _check_input(input_cpu_seconds: Any, machine: Hardware) -> None:
    if input_cpu_seconds is None:
        return
    if not is_number(input_cpu_seconds) or not input_cpu_seconds > 0:
        raise ValueError("input_cpu_seconds must be CPU seconds per sample > 0 or None. "
                         f"Received: input_cpu_seconds={input_cpu_seconds!r}")
    if machine.host_cores < 1:
        raise ValueError(
            f"input_cpu_seconds needs the host's CPU cores, and {machine.name} does not "
            "give them: set Hardware(host_cores=...). "
            f"Received: hardware={machine.name!r} with host_cores={machine.host_cores!r}")


def _compute_source(step_time: float | None, setup: Setup) -> str:
    if step_time is None:
        return "modelled from the traced step's FLOPs and bytes"
    return (f"anchored to the measured one-device step of {step_time:.4g} s (modelled "
            f"compute scaled by {setup.compute_scale:.2f})")


def _check_arguments(batch_size: Any, devices: Any, machine: Hardware, strategy: Any,
                     scaling: Any, step_time: Any) -> list[int]:
    """The device counts to forecast, one included, in order; or a clear error."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1. Received: batch_size={batch_size!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be 'split' or 'mirrored'. Received: strategy={strategy!r}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be 'weak' or 'strong'. Received: scaling={scaling!r}")
    if step_time is not None and (isinstance(step_time, bool) or not isinstance(
            step_time, (int, float)) or not step_time > 0):
        raise ValueError(f"step_time must be seconds > 0 or None. Received: step_time={step_time!r}")
    try:
        counts = sorted({1, *(int(n) for n in devices)})
    except (TypeError, ValueError):
        raise ValueError(f"devices must be GPU counts such as (1, 2, 4, 8). "
                         f"Received: devices={devices!r}") from None
    if counts[0] < 1 or counts[-1] > machine.gpus:
        raise ValueError(f"devices must be between 1 and the {machine.gpus} GPUs of "
                         f"{machine.name}. Received: devices={devices!r}")
    if scaling == "strong" and batch_size < counts[-1]:
        raise ValueError("With scaling='strong' the batch is split over the devices, so it "
                         f"needs at least {counts[-1]} rows. Received: batch_size={batch_size!r}")
    return counts

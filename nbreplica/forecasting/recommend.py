"""What to change, read off forecasts of the alternatives on the same traced step."""

from __future__ import annotations

from dataclasses import replace

from nbreplica.forecasting.profile import StepProfile
from nbreplica.forecasting.step_model import Setup, forecast_step

#: The efficiency a per-device batch is sought for.
TARGET_EFFICIENCY = 0.8
#: How many doublings of the traced batch the search tries.
_SEARCH_STEPS = 6


def speedup(profile: StepProfile, setup: Setup, devices: int) -> float:
    """Throughput on ``devices`` over one device's, both at ``profile``'s batch."""
    one = forecast_step(profile, setup, 1).seconds
    return devices * one / forecast_step(profile, setup, devices).seconds


def recommendations(profile: StepProfile, setup: Setup, devices: int) -> list[str]:
    """What to change for ``devices`` GPUs, each with its forecast speedup."""
    if devices < 2:
        return []
    now = speedup(profile, setup, devices)
    found = []
    alternatives = []
    if setup.strategy == "split" and setup.cpu_merge and setup.hardware.has_nvlink:
        alternatives.append(("cpu_merge=False: the weights and the merge on the first GPU "
                             "keep the step's copies on NVLink",
                             replace(setup, cpu_merge=False, cpu_relocation=False)))
    if setup.strategy == "split":
        alternatives.append(("strategy='mirrored' (MirroredStrategy's all-reduce) for this "
                             f"model's {profile.parameter_bytes / 1e6:.0f} MB of weights",
                             replace(setup, strategy="mirrored")))
    for text, other in alternatives:
        better = speedup(profile, other, devices)
        if better > now * 1.02:
            found.append(f"{text}: {better:.2f}x at {devices} GPUs instead of {now:.2f}x")
    found += input_cores(profile, setup, devices)
    found.append(batch_for_efficiency(profile, setup, devices))
    return found


def input_cores(profile: StepProfile, setup: Setup, devices: int) -> list[str]:
    """Where the input pipeline bounds the step on ``devices`` GPUs: the host cores
    per GPU it would need to keep up with them."""
    step = forecast_step(profile, setup, devices)
    if not step.bottleneck.startswith("input pipeline"):
        return []
    fed = forecast_step(profile, replace(setup, input_cpu_seconds=0.0), devices).seconds
    cores = setup.hardware.host_cores_per_gpu
    return [f"the input pipeline bounds the step at {devices} GPUs: it would keep up with "
            f"{cores * step.seconds / fed:.0f} host cores per GPU instead of {cores:g}; "
            "prepare the samples on the GPUs or before training to lift it"]


def batch_for_efficiency(profile: StepProfile, setup: Setup, devices: int) -> str:
    """The per-device batch (the traced one times a power of two) whose forecast
    weak-scaling efficiency on ``devices`` GPUs reaches :data:`TARGET_EFFICIENCY`: the
    smallest larger one if the traced batch falls short, else the smallest one down to
    an eighth of it that still does."""
    rows = profile.per_replica_batch

    def reaches(candidate: int) -> bool:
        scaled = profile.at_batch(candidate)
        return speedup(scaled, setup, devices) / devices >= TARGET_EFFICIENCY

    target = f"{TARGET_EFFICIENCY:.0%} efficiency at {devices} GPUs"
    if reaches(rows):
        smaller = [c for c in (rows // 8, rows // 4, rows // 2) if c >= 1 and reaches(c)]
        return (f"the per-device batch of {rows} already reaches {target}; "
                f"{smaller[0] if smaller else rows} is the smallest that does "
                "(estimated in proportion to the batch)")
    for candidate in (rows * 2 ** k for k in range(1, _SEARCH_STEPS + 1)):
        if reaches(candidate):
            return (f"a per-device batch of {candidate} reaches {target} (the traced batch "
                    f"is {rows}; estimated in proportion to the batch)")
    return (f"no per-device batch up to {rows * 2 ** _SEARCH_STEPS} reaches {target}: the "
            "step's fixed costs (weights, gradients, update, merge) or its input pipeline "
            "bound it")

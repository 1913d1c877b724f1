"""The physical model: a training step's time on ``n`` GPUs of a machine.

No constant here is fitted to a model or to a published table; every one is below,
and the forecast's explanation repeats them.

Compute. Each op's work (:mod:`nbreplica.forecasting.flops`) runs at an achievable
fraction of the GPU's peak: matrix products and convolutions at
``COMPUTE_EFFICIENCY["matmul"]`` of the peak of their dtype (float32 ones on tensor
cores as TF32 where the GPU has it: TensorFlow's default since 2.4), memory-bound ops
at ``COMPUTE_EFFICIENCY["memory"]`` of the memory bandwidth, and each op costs a
dispatch (``KERNEL_SECONDS``: a kernel launch on a GPU, TensorFlow's executor on the
host, taken as the same, so that moving work to the host never looks cheaper in
dispatches). Work on the host runs at the host's memory bandwidth and
``Hardware.host_peak_flops``. The loss and its bookkeeping (the merge) cover the rows
they are given: one GPU's own, or every replica's on the merge device. A measured one-device step (``step_time=``) replaces the
modelled compute: the GPUs' compute is scaled so that the one-device step takes it.

Transfers (:mod:`nbreplica.forecasting.links`). Copies that run together share the links
on their routes; a phase lasts as long as its busiest link.

The step, per strategy:

- one device: the batch is copied to the GPU, then the forward and backward passes,
  the loss and the optimizer update run there.
- ``"split"`` (``replicate``: weights on one device, PS-style): the host copies each
  GPU its rows; the weights stream from the weights device to each replica during
  its forward pass (a third of its compute, the backward pass being two thirds: one
  product for the inputs' gradient, one for the weights'); the outputs go to the
  merge device, the loss runs there, the outputs' gradients come back; each replica's
  weight gradients stream to the weights device during its backward pass; the weights
  device sums the ``n`` gradients (reading ``n`` and writing one gradient's bytes) and
  runs the optimizer. Weights live on the host with ``cpu_merge=True`` or
  ``cpu_relocation=True`` (as ``multi_gpu_model`` recommended: the template built
  under the CPU), else on the first GPU; the merge device is the host with
  ``cpu_merge=True``, else the first GPU.
- ``"mirrored"`` (``MirroredStrategy`` with NCCL): the host copies each GPU its rows;
  each replica computes; the dense gradients are all-reduced by a ring, each GPU
  sending and receiving ``2 (n - 1) / n`` of their bytes (over NVLink NCCL's rings use
  every link of a GPU); the sparse ones (an embedding's gathered rows) are not: as
  TensorFlow's cross-device ops do for ``IndexedSlices``, every GPU sends its rows to
  the first, which sends all ``n`` GPUs' rows back to each; each GPU then runs the
  optimizer on its copy.

Nothing else overlaps: the batch copy, the merge, the gradient sum, the all-reduce
and the update each wait for what comes before them.

The input pipeline (``Setup.input_cpu_seconds``: CPU core-seconds to prepare one
sample, on one host core at its turbo clock; none by default: the batch is ready in
host memory). It runs on the host's CPUs while the GPUs compute (prefetched), so the
step lasts as long as the longer of the two. Each GPU's pipeline runs on its share of
the host's cores (``Hardware.host_cores_per_gpu``, as a launcher that binds one
process per GPU to the cores near it does), and the cores run slower the more of them
are busy: at the turbo clock with none busy, at the base clock with all busy, in
proportion between (``Hardware.host_clock``; a CPU's turbo headroom is shared by its
cores' power and thermal budget). So an input-bound model scales worse than its GPUs:
on 8 GPUs of a DGX-1 (2x 20-core Xeon E5-2698 v4, 2.2 GHz base, 3.6 GHz turbo) each
GPU's 5 cores run at 61% of the turbo clock, against 95% on one GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbreplica.forecasting.flops import Work
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.links import Copy, LINK_EFFICIENCY, link_seconds
from nbreplica.forecasting.placement import HOST, gpu
from nbreplica.forecasting.profile import StepProfile

#: Achievable fraction of peak: large cuBLAS/cuDNN products and convolutions reach
#: 50-70% of a GPU's peak; elementwise and normalization kernels about 70% of its
#: memory bandwidth.
COMPUTE_EFFICIENCY = {"matmul": 0.6, "memory": 0.7}
#: Seconds to dispatch one op: a CUDA launch plus TensorFlow's executor on a GPU;
#: the same is assumed on the host.
KERNEL_SECONDS = 5e-6
#: The compute type of a float32 product on a GPU with TF32 tensor cores.
_TF32 = "tf32"
#: Forward pass share of a replica's compute; the backward pass is the rest.
FORWARD_SHARE = 1 / 3
PARTS = ("input", "batch", "compute", "weights", "activations", "merge", "gradients",
         "gradient_sum", "allreduce", "update")


@dataclass
class StepForecast:
    """One device count's forecast step: its parts' seconds, what bounds it."""

    devices: int
    per_replica_batch: int
    seconds: float
    parts: dict[str, float]
    bottleneck: str
    links: dict[str, str] = field(default_factory=dict)  # part -> its busiest link
    busy: dict[str, float] = field(default_factory=dict)  # link -> seconds busy per step


def work_seconds(work: Work, hardware: Hardware, on_host: bool = False) -> float:
    """Seconds ``work`` takes on one GPU of ``hardware`` (or on its host)."""
    if on_host:
        flops = work.total_flops / (hardware.host_peak_flops * COMPUTE_EFFICIENCY["matmul"])
        memory = work.memory_bytes / (hardware.host_memory_bandwidth
                                      * LINK_EFFICIENCY["host-memory"])
        return flops + memory + work.kernels * KERNEL_SECONDS
    flops = sum(value / (hardware.peak(_compute_type(dtype, hardware))
                         * COMPUTE_EFFICIENCY["matmul"]) for dtype, value in work.flops.items())
    memory = work.memory_bytes / (hardware.memory_bandwidth * COMPUTE_EFFICIENCY["memory"])
    return flops + memory + work.kernels * KERNEL_SECONDS


def _compute_type(dtype: str, hardware: Hardware) -> str:
    if dtype == "float32" and _TF32 in hardware.peak_flops:
        return _TF32
    return dtype


@dataclass(frozen=True)
class Setup:
    """What a forecast step depends on besides the profile."""

    hardware: Hardware
    strategy: str = "split"
    cpu_merge: bool = True
    cpu_relocation: bool = False
    compute_scale: float = 1.0  # measured over modelled GPU compute (``step_time=``)
    input_cpu_seconds: float = 0.0  # per sample, on one host core at its turbo clock

    @property
    def weights_device(self) -> str:
        return HOST if self.cpu_merge or self.cpu_relocation else gpu(0)

    @property
    def merge_device(self) -> str:
        return HOST if self.cpu_merge else gpu(0)


def forecast_step(profile: StepProfile, setup: Setup, devices: int) -> StepForecast:
    """The step of ``profile`` on ``devices`` GPUs of ``setup.hardware``."""
    compute = work_seconds(profile.replica, setup.hardware) * setup.compute_scale
    if devices == 1:
        parts, links, busy = _one_device(profile, setup, compute)
    elif setup.strategy == "mirrored":
        parts, links, busy = _mirrored(profile, setup, devices, compute)
    else:
        parts, links, busy = _split(profile, setup, devices, compute)
    seconds, bottleneck = _combine(parts, setup.strategy if devices > 1 else "one")
    parts["input"] = input_seconds(profile.per_replica_batch, setup, devices)
    if parts["input"] > seconds:
        seconds, bottleneck = parts["input"], "input"
    split = devices > 1 and setup.strategy == "split"
    each = "each GPU" if devices > 1 else "the GPU"
    cores = setup.hardware.host_cores_per_gpu
    where = {"merge": setup.merge_device if split else each,
             "gradient_sum": setup.weights_device,
             "update": setup.weights_device if split else each,
             "input": f"{cores:g} host cores per GPU"}
    label = _label(bottleneck, links, where)
    return StepForecast(devices, profile.per_replica_batch, seconds, parts, label, links, busy)


def input_seconds(rows: int, setup: Setup, devices: int) -> float:
    """Seconds the host's cores take to prepare one GPU's ``rows`` samples while
    ``devices`` GPUs train (0 without an input pipeline)."""
    hardware = setup.hardware
    if not setup.input_cpu_seconds:
        return 0.0
    cores = hardware.host_cores_per_gpu
    clock = hardware.host_clock(devices / hardware.gpus)
    return rows * setup.input_cpu_seconds / (cores * clock)


Timed = tuple[dict[str, tuple[float, str]], dict[str, float]]


def _phases(hardware: Hardware, phases: dict[str, list[Copy]]) -> Timed:
    """Per phase, its seconds and busiest link; and per link, its seconds over all."""
    timed, busy = {}, {}
    for name, copies in phases.items():
        links = link_seconds(hardware, copies)
        link = max(links, key=links.__getitem__) if links else ""
        timed[name] = (links.get(link, 0.0), link)
        for key, value in links.items():
            busy[key] = busy.get(key, 0.0) + value
    return timed, busy


def _one_device(profile: StepProfile, setup: Setup, compute: float
                ) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    timed, busy = _phases(setup.hardware, {"batch": [
        (HOST, gpu(0), profile.inbound.get("batch", 0) + profile.label_bytes)]})
    batch, link = timed["batch"]
    parts = dict.fromkeys(PARTS, 0.0)
    parts.update(batch=batch, compute=compute,
                 merge=work_seconds(profile.merge_of(1), setup.hardware) * setup.compute_scale,
                 update=work_seconds(profile.update, setup.hardware))
    return parts, {"batch": link}, busy


def _split(profile: StepProfile, setup: Setup, n: int, compute: float
           ) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    hardware, weights, merge = setup.hardware, setup.weights_device, setup.merge_device
    gpus = [gpu(k) for k in range(n)]
    inbound, outbound = profile.inbound, profile.outbound
    batch_copies: list[Copy] = [(HOST, g, inbound.get("batch", 0)) for g in gpus]
    if merge != HOST:
        batch_copies.append((HOST, merge, n * profile.label_bytes))
    phases = {
        "batch": batch_copies,
        "weights": [(weights, g, inbound.get("weights", 0)) for g in gpus],
        "outputs": [(g, merge, outbound.get("activations", 0)) for g in gpus],
        "seeds": [(merge, g, inbound.get("activations", 0)) for g in gpus],
        "gradients": [(g, weights, outbound.get("gradients", 0)) for g in gpus],
    }
    timed, busy = _phases(hardware, phases)
    on_host = weights == HOST
    summed = Work({}, float((n + 1) * profile.gradient_bytes), 0)
    parts = dict.fromkeys(PARTS, 0.0)
    parts.update(
        batch=timed["batch"][0], compute=compute, weights=timed["weights"][0],
        activations=timed["outputs"][0] + timed["seeds"][0],
        merge=_merge_seconds(profile, setup, n), gradients=timed["gradients"][0],
        gradient_sum=work_seconds(summed, hardware, on_host),
        update=work_seconds(profile.update, hardware, on_host))
    links = {name: timed[name][1] for name in ("batch", "weights", "gradients")}
    links["activations"] = timed["outputs"][1] or timed["seeds"][1]
    return parts, links, busy


def _merge_seconds(profile: StepProfile, setup: Setup, n: int) -> float:
    merge = profile.merge_of(n)
    if setup.merge_device == HOST:
        return work_seconds(merge, setup.hardware, on_host=True)
    return work_seconds(merge, setup.hardware) * setup.compute_scale


def _mirrored(profile: StepProfile, setup: Setup, n: int, compute: float
              ) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    hardware = setup.hardware
    rows = profile.inbound.get("batch", 0) + profile.label_bytes
    hop = 2 * (n - 1) / n * profile.gradient_bytes
    ring = _ring(hardware, n)
    sparse, others = profile.sparse_gradient_bytes, [gpu(k) for k in range(1, n)]
    phases = {"batch": [(HOST, gpu(k), rows) for k in range(n)],
              "allreduce": [] if hardware.has_nvlink else
              [(gpu(a), gpu(b), hop) for a, b in zip(ring, ring[1:] + ring[:1])],
              "sparse_gather": [(g, gpu(0), sparse) for g in others if sparse],
              "sparse_broadcast": [(gpu(0), g, n * sparse) for g in others if sparse]}
    timed, busy = _phases(hardware, phases)
    if hardware.has_nvlink:
        link = "nvlink (NCCL rings over every link)"
        timed["allreduce"] = (hop / (hardware.nvlink_bandwidth * LINK_EFFICIENCY["nvlink"]),
                              link)
        busy[link] = timed["allreduce"][0]
    reduce = {name: timed[name] for name in ("allreduce", "sparse_gather", "sparse_broadcast")}
    parts = dict.fromkeys(PARTS, 0.0)
    parts.update(batch=timed["batch"][0], compute=compute,
                 allreduce=sum(seconds for seconds, _ in reduce.values()),
                 merge=work_seconds(profile.merge_of(1), hardware) * setup.compute_scale,
                 update=work_seconds(profile.update, hardware))
    return parts, {"batch": timed["batch"][1], "allreduce": max(reduce.values())[1]}, busy


def _ring(hardware: Hardware, n: int) -> list[int]:
    """The ring order: GPU by GPU, or on a DGX-1 mesh one that keeps to NVLink."""
    if hardware.topology == "mesh" and n == 8:
        return [0, 1, 2, 3, 7, 6, 5, 4]
    return list(range(n))


def _combine(parts: dict[str, float], strategy: str) -> tuple[float, str]:
    """The step's seconds from its parts, and the part that contributes most."""
    if strategy != "split":
        contributions = {name: parts[name] for name in
                         ("batch", "compute", "merge", "allreduce", "update")}
    else:
        # The weights stream in during the forward pass, the gradients out during the
        # backward pass: each phase lasts as long as the longer of the two.
        contributions = {name: parts[name] for name in
                         ("batch", "activations", "merge", "gradient_sum", "update")}
        for name, share in (("weights", FORWARD_SHARE), ("gradients", 1 - FORWARD_SHARE)):
            own = parts["compute"] * share
            winner = name if parts[name] > own else "compute"
            contributions[winner] = contributions.get(winner, 0.0) + max(own, parts[name])
    return sum(contributions.values()), max(contributions, key=contributions.__getitem__)


def _label(part: str, links: dict[str, str], where: dict[str, str]) -> str:
    """A readable bottleneck: the part, and its link or device."""
    names = {"gradient_sum": "gradient sum", "update": "optimizer update",
             "merge": "merge (loss)", "allreduce": "all-reduce", "input": "input pipeline"}
    text = names.get(part, part)
    if links.get(part):
        return f"{text} over {links[part]}"
    if part in where:
        return f"{text} on {where[part]}"
    return text

"""What a forecast needs to know about a multi-GPU machine (plain data, no TensorFlow).

Bandwidths are bytes per second in one direction; peaks are dense FLOP/s (no
sparsity). A PCIe link's bandwidth follows from its generation and lanes (the
per-lane rates after line encoding, PCI-SIG: 3.0 8 GT/s with 128b/130b, 4.0 16 GT/s,
5.0 32 GT/s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Bytes per second per lane and direction, by PCIe generation (after encoding).
PCIE_LANE_BANDWIDTH = {3: 0.985e9, 4: 1.969e9, 5: 3.938e9}
#: How GPUs reach each other: through PCIe only, an NVLink mesh where each GPU links
#: some peers directly (DGX-1's hybrid cube-mesh), or NVSwitches joining all of them.
TOPOLOGIES = ("pcie", "mesh", "nvswitch")


@dataclass(frozen=True)
class Hardware:
    """One multi-GPU machine: its GPUs, their links and its host.

    Args:
        name: A short name (the catalogue's key).
        description: One line on what the machine is.
        gpus: How many GPUs it has.
        peak_flops: Per GPU, dense peak FLOP/s by compute type: ``"float32"``,
            ``"tf32"`` (float32 matmuls and convolutions on tensor cores, on by
            default in TensorFlow on Ampere and later), ``"float16"``, ``"bfloat16"``.
            A missing type runs at the ``"float32"`` peak.
        memory_bandwidth: Per GPU, its memory's bandwidth.
        pcie_generation: The GPUs' PCIe generation (3, 4 or 5).
        pcie_lanes: Lanes of each GPU's PCIe link.
        gpus_per_pcie_switch: GPUs sharing one PCIe link to the host (a switch or a
            dual-GPU board): their host traffic shares it.
        host_memory_bandwidth: The host's memory bandwidth, all sockets together
            (where host-side merges and updates read and write).
        nvlink_bandwidth: Per GPU, its NVLink bandwidth, all links together
            (0: no NVLink).
        topology: One of :data:`TOPOLOGIES`.
        host_peak_flops: The host CPUs' FLOP/s for the little compute a merge on the
            host does (a loss's products); 1 TFLOP/s by default (assumed: two server
            CPUs' vector units).
        host_cores: The host's physical CPU cores, all sockets together (0: unknown),
            which an input pipeline shares out between the GPUs.
        host_base_clock, host_turbo_clock: The host CPUs' base and maximum turbo clock
            in GHz (0: unknown, taken as one clock): a CPU whose cores are all busy
            runs them near its base clock, one with few busy near its turbo clock.
        peer_to_peer: Whether GPUs copy to each other directly over PCIe; without
            it, a copy between GPUs goes through host memory.
        sources: Per field name, the spec sheet its value comes from.
    """

    name: str
    description: str
    gpus: int
    peak_flops: Mapping[str, float]
    memory_bandwidth: float
    pcie_generation: int
    pcie_lanes: int
    gpus_per_pcie_switch: int
    host_memory_bandwidth: float
    nvlink_bandwidth: float = 0.0
    topology: str = "pcie"
    peer_to_peer: bool = True
    host_peak_flops: float = 1e12
    host_cores: int = 0
    host_base_clock: float = 0.0
    host_turbo_clock: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                f"topology must be one of {', '.join(TOPOLOGIES)}. "
                f"Received: topology={self.topology!r}")
        if self.pcie_generation not in PCIE_LANE_BANDWIDTH:
            raise ValueError(
                "pcie_generation must be 3, 4 or 5. "
                f"Received: pcie_generation={self.pcie_generation!r}")
        if "float32" not in self.peak_flops:
            raise ValueError(
                "peak_flops needs a 'float32' entry. "
                f"Received: peak_flops={dict(self.peak_flops)!r}")
        for name in ("gpus", "pcie_lanes", "gpus_per_pcie_switch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.host_turbo_clock and self.host_turbo_clock < self.host_base_clock:
            raise ValueError(
                "host_turbo_clock must be at least host_base_clock. Received: "
                f"host_base_clock={self.host_base_clock!r}, "
                f"host_turbo_clock={self.host_turbo_clock!r}")

    @property
    def pcie_bandwidth(self) -> float:
        """One GPU's PCIe link, bytes per second per direction."""
        return PCIE_LANE_BANDWIDTH[self.pcie_generation] * self.pcie_lanes

    @property
    def has_nvlink(self) -> bool:
        return self.nvlink_bandwidth > 0 and self.topology != "pcie"

    @property
    def host_cores_per_gpu(self) -> float:
        """The host cores each GPU's input pipeline runs on: an equal share of all."""
        return self.host_cores / self.gpus

    def host_clock(self, busy_share: float) -> float:
        """The host cores' clock, relative to the turbo clock, with ``busy_share`` of
        them busy: the turbo clock when none is, the base clock when all are, in
        proportion between (1.0 where the clocks are unknown)."""
        if not (self.host_base_clock and self.host_turbo_clock):
            return 1.0
        drop = (self.host_turbo_clock - self.host_base_clock) * min(max(busy_share, 0.0), 1.0)
        return (self.host_turbo_clock - drop) / self.host_turbo_clock

    def peak(self, compute_type: str) -> float:
        """Per-GPU peak FLOP/s for ``compute_type`` (the float32 peak if unlisted)."""
        return self.peak_flops.get(compute_type, self.peak_flops["float32"])

    def summary(self) -> str:
        """One line: GPUs, peak, links."""
        links = (f"NVLink {self.nvlink_bandwidth / 1e9:.0f} GB/s per GPU ({self.topology})"
                 if self.has_nvlink else "no NVLink")
        p2p = "" if self.peer_to_peer else ", no peer-to-peer"
        return (f"{self.gpus} GPUs, {self.peak('float32') / 1e12:.1f} TFLOP/s float32 each, "
                f"PCIe {self.pcie_generation}.0 x{self.pcie_lanes}{p2p}, {links}")

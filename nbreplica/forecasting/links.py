"""Which links a copy between two devices of a machine occupies, and for how long.

Routes: host <-> GPU over the GPU's PCIe link and, where GPUs share a PCIe switch,
the switch's uplink, reading or writing host memory; GPU <-> GPU over NVLink (through
the NVSwitches, or a direct link between DGX-1 hybrid cube-mesh neighbours: GPUs in
the same quad, and GPU i with GPU i+4), else over PCIe peer-to-peer (both GPUs' links,
and both switches' uplinks when the switches differ), else without peer-to-peer
through host memory (up one GPU's links, down the other's).

Every link carries its copies one after another at an achievable fraction of its
bandwidth (:data:`LINK_EFFICIENCY`); a phase of copies that run together lasts as long
as its busiest link is busy.
"""

from __future__ import annotations

from collections.abc import Iterable

from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.placement import HOST

#: Achievable fraction of a link's bandwidth: large pinned copies reach about 80% of
#: PCIe's rate (TLP and flow-control overhead) and of NVLink's; host memory streams at
#: about 70% of its peak.
LINK_EFFICIENCY = {"pcie": 0.8, "uplink": 0.8, "nvlink": 0.8, "host-memory": 0.7}

Copy = tuple[str, str, float]  # source device, destination device, bytes


def index_of(device: str) -> int:
    return int(device[3:])


def route(hardware: Hardware, source: str, destination: str) -> list[str]:
    """The links a copy from ``source`` to ``destination`` occupies (each named with
    its direction)."""
    if source == HOST:
        return _host_path(hardware, index_of(destination), "down")
    if destination == HOST:
        return _host_path(hardware, index_of(source), "up")
    a, b = index_of(source), index_of(destination)
    if hardware.topology == "nvswitch" and hardware.has_nvlink:
        return [f"nvlink gpu{a} out", f"nvlink gpu{b} in"]
    if hardware.topology == "mesh" and hardware.has_nvlink and _neighbours(a, b):
        return [f"nvlink gpu{a}-gpu{b}"]
    if hardware.peer_to_peer:
        links = [f"pcie gpu{a} up", f"pcie gpu{b} down"]
        switch_a, switch_b = _switch(hardware, a), _switch(hardware, b)
        if switch_a != switch_b:
            links += [f"uplink switch{switch_a} up", f"uplink switch{switch_b} down"]
        return links
    return _host_path(hardware, a, "up") + _host_path(hardware, b, "down")


def _host_path(hardware: Hardware, gpu: int, direction: str) -> list[str]:
    links = [f"pcie gpu{gpu} {direction}", "host-memory"]
    if hardware.gpus_per_pcie_switch > 1:
        links.append(f"uplink switch{_switch(hardware, gpu)} {direction}")
    return links


def _switch(hardware: Hardware, gpu: int) -> int:
    return gpu // hardware.gpus_per_pcie_switch


def _neighbours(a: int, b: int) -> bool:
    return a // 4 == b // 4 or abs(a - b) == 4


def bandwidth(hardware: Hardware, link: str) -> float:
    """Achievable bytes per second of ``link``."""
    kind = link.split()[0]
    if kind == "host-memory":
        raw = hardware.host_memory_bandwidth
    elif kind == "nvlink":
        # A mesh link joins one of a GPU's (about) four neighbours.
        raw = hardware.nvlink_bandwidth / (4 if "-" in link else 1)
    else:
        raw = hardware.pcie_bandwidth
    return raw * LINK_EFFICIENCY[kind]


def link_seconds(hardware: Hardware, copies: Iterable[Copy]) -> dict[str, float]:
    """Per link, the seconds ``copies`` keep it busy."""
    busy: dict[str, float] = {}
    for source, destination, size in copies:
        if size <= 0 or source == destination:
            continue
        for link in route(hardware, source, destination):
            busy[link] = busy.get(link, 0.0) + size / bandwidth(hardware, link)
    return busy

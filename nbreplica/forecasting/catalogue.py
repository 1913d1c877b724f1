"""The machines a forecast knows by name, each value with the spec sheet it comes from.

Where a spec sheet gives a peak "with sparsity", the dense peak (half of it) is used.
Per-GPU values of the dual-GPU K80 board are half the board's. A value no spec sheet
states is marked *assumed* in its source, with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbreplica.forecasting.hardware import Hardware

if TYPE_CHECKING:
    import pandas as pd

TERA, GIGA = 1e12, 1e9

_K80 = "NVIDIA Tesla K80 datasheet (2014): 8.73 TFLOP/s float32 with GPU Boost, 480 GB/s per two-GPU board"
_AWS_P2 = "AWS EC2 P2 instances page: p2.8xlarge, 8 K80 GPUs, Intel Xeon E5-2686 v4"
_E5_2686 = "Intel ARK, Xeon E5-2686 v4: 4 channels DDR4-2400 (76.8 GB/s), one socket for 32 vCPUs"
_P100 = "NVIDIA Tesla P100 SXM2 datasheet: 10.6 TFLOP/s float32, 21.2 float16, 732 GB/s, NVLink 160 GB/s bidirectional"
_V100 = "NVIDIA Tesla V100 SXM2 datasheet: 15.7 TFLOP/s float32, 125 tensor float16, 900 GB/s, NVLink 300 GB/s bidirectional"
_DGX1 = ("NVIDIA DGX-1 System Architecture whitepaper (WP-08437): hybrid cube-mesh NVLink, "
         "four PCIe 3.0 x16 switches with two GPUs each, 2x Xeon E5-2698 v4 (4 channels DDR4-2400 each)")
_A100 = ("NVIDIA A100 Tensor Core GPU datasheet (SXM 40GB): 19.5 TFLOP/s float32, 156 tf32, "
         "312 float16/bfloat16, 1555 GB/s, NVLink 600 GB/s bidirectional")
_DGXA100 = ("NVIDIA DGX A100 System Architecture whitepaper: six NVSwitches, four PCIe 4.0 switches "
            "with two GPUs each, 2x AMD EPYC 7742 (8 channels DDR4-3200 each)")
_H100 = ("NVIDIA H100 Tensor Core GPU datasheet (SXM): 67 TFLOP/s float32, 989 tf32 and 1979 "
         "float16/bfloat16 with sparsity, 3.35 TB/s, NVLink 900 GB/s bidirectional")
_DGXH100 = ("NVIDIA DGX H100 user guide: four NVSwitches, PCIe 5.0 GPUs, 2x Xeon Platinum 8480C "
            "(8 channels DDR5-4800 each)")
_L4 = ("NVIDIA L4 Tensor Core GPU datasheet: 30.3 TFLOP/s float32, 120 tf32 and 242 "
       "float16/bfloat16 with sparsity, 300 GB/s, PCIe 4.0 x16, no NVLink")
_4090 = ("NVIDIA Ada Lovelace GPU architecture whitepaper, appendix (GeForce RTX 4090): 82.6 TFLOP/s "
         "float32 and tf32, 165.2 float16/bfloat16 with float32 accumulation, 1008 GB/s, PCIe 4.0 x16")
_NO_P2P = "NVIDIA driver release notes: peer-to-peer is not supported on GeForce RTX 40 series"
_E5_2686_CLOCKS = "Intel ARK, Xeon E5-2686 v4: 2.3 GHz base, 3.0 GHz max turbo; 32 vCPUs are 16 cores"
_E5_2698 = "Intel ARK, Xeon E5-2698 v4: 20 cores, 2.2 GHz base, 3.6 GHz max turbo (two in a DGX-1: 40 cores)"
_EPYC_7742 = "AMD EPYC 7742 product page: 64 cores, 2.25 GHz base, 3.4 GHz max boost (two in a DGX A100: 128 cores)"
_8480C = ("NVIDIA DGX H100 datasheet: 2x Intel Xeon Platinum 8480C, 112 cores in all, 2.0 GHz base, "
          "3.8 GHz max boost")
_G2_96 = "Google Cloud G2 machine series: g2-standard-96 has 96 vCPUs (48 cores, two threads each)"
_ASSUMED_SWITCH = "assumed: two GPUs per PCIe switch, as in the DGX A100 whitepaper"


def _catalogue() -> dict[str, Hardware]:
    machines = [_k80(), *_dgx(), *_pcie4()]
    return {machine.name: machine for machine in machines}


def _k80() -> Hardware:
    """The PCIe 3.0 cloud machine of K80 boards."""
    return Hardware(
        "8xK80-pcie3", "8 Tesla K80 GPUs (4 boards) on PCIe 3.0: a p2.8xlarge-class cloud machine",
        8, {"float32": 4.37 * TERA}, 240 * GIGA, 3, 16, 2, 76.8 * GIGA,
        host_cores=16, host_base_clock=2.3, host_turbo_clock=3.0,
        sources={"host_cores": _E5_2686_CLOCKS, "host_turbo_clock": _E5_2686_CLOCKS,
                 "peak_flops": _K80, "memory_bandwidth": _K80, "gpus": _AWS_P2,
                 "gpus_per_pcie_switch": "NVIDIA Tesla K80 board specification: "
                 "two GPUs behind one on-board PCIe switch",
                 "host_memory_bandwidth": _E5_2686})


def _dgx() -> list[Hardware]:
    """The NVLink machines: DGX-1 (P100, V100), DGX A100, DGX H100."""
    return [
        Hardware("dgx1-p100", "NVIDIA DGX-1 with 8 Tesla P100 SXM2 (NVLink 1, hybrid cube-mesh)",
                 8, {"float32": 10.6 * TERA, "float16": 21.2 * TERA}, 732 * GIGA, 3, 16, 2,
                 153.6 * GIGA, 80 * GIGA, "mesh",
                 host_cores=40, host_base_clock=2.2, host_turbo_clock=3.6,
                 sources={"host_cores": _E5_2698, "host_turbo_clock": _E5_2698,
                          "peak_flops": _P100, "memory_bandwidth": _P100,
                          "nvlink_bandwidth": _P100, "topology": _DGX1,
                          "gpus_per_pcie_switch": _DGX1, "host_memory_bandwidth": _DGX1}),
        Hardware("dgx1-v100", "NVIDIA DGX-1 with 8 Tesla V100 SXM2 (NVLink 2, hybrid cube-mesh)",
                 8, {"float32": 15.7 * TERA, "float16": 125 * TERA}, 900 * GIGA, 3, 16, 2,
                 153.6 * GIGA, 150 * GIGA, "mesh",
                 host_cores=40, host_base_clock=2.2, host_turbo_clock=3.6,
                 sources={"host_cores": _E5_2698, "host_turbo_clock": _E5_2698,
                          "peak_flops": _V100, "memory_bandwidth": _V100,
                          "nvlink_bandwidth": _V100, "topology": _DGX1,
                          "gpus_per_pcie_switch": _DGX1, "host_memory_bandwidth": _DGX1}),
        Hardware("dgx-a100", "NVIDIA DGX A100 with 8 A100 SXM4 40GB (NVLink 3, NVSwitch)",
                 8, {"float32": 19.5 * TERA, "tf32": 156 * TERA, "float16": 312 * TERA,
                     "bfloat16": 312 * TERA}, 1555 * GIGA, 4, 16, 2, 409.6 * GIGA,
                 300 * GIGA, "nvswitch",
                 host_cores=128, host_base_clock=2.25, host_turbo_clock=3.4,
                 sources={"host_cores": _EPYC_7742, "host_turbo_clock": _EPYC_7742,
                          "peak_flops": _A100, "memory_bandwidth": _A100,
                          "nvlink_bandwidth": _A100, "topology": _DGXA100,
                          "gpus_per_pcie_switch": _DGXA100, "host_memory_bandwidth": _DGXA100}),
        Hardware("dgx-h100", "NVIDIA DGX H100 with 8 H100 SXM5 (NVLink 4, NVSwitch)",
                 8, {"float32": 67 * TERA, "tf32": 494.5 * TERA, "float16": 989.5 * TERA,
                     "bfloat16": 989.5 * TERA}, 3350 * GIGA, 5, 16, 2, 614.4 * GIGA,
                 450 * GIGA, "nvswitch",
                 host_cores=112, host_base_clock=2.0, host_turbo_clock=3.8,
                 sources={"host_cores": _8480C, "host_turbo_clock": _8480C,
                          "peak_flops": _H100, "memory_bandwidth": _H100,
                          "nvlink_bandwidth": _H100, "topology": _DGXH100,
                          "gpus_per_pcie_switch": _ASSUMED_SWITCH,
                          "host_memory_bandwidth": _DGXH100}),
    ]


def _pcie4() -> list[Hardware]:
    """The PCIe 4.0 machines without NVLink."""
    return [
        Hardware("8xL4-pcie4", "8 NVIDIA L4 GPUs on PCIe 4.0 (a g2-standard-96-class cloud machine)",
                 8, {"float32": 30.3 * TERA, "tf32": 60 * TERA, "float16": 121 * TERA,
                     "bfloat16": 121 * TERA}, 300 * GIGA, 4, 16, 2, 281.6 * GIGA,
                 host_cores=48,
                 sources={"host_cores": _G2_96,
                          "peak_flops": _L4, "memory_bandwidth": _L4, "topology": _L4,
                          "gpus_per_pcie_switch": _ASSUMED_SWITCH,
                          "host_memory_bandwidth": "assumed: 2 sockets of 6 channels "
                          "DDR4-2933 (Intel Cascade Lake, 140.8 GB/s each)"}),
        Hardware("4xRTX4090-pcie4", "4 GeForce RTX 4090 on PCIe 4.0 x16, no peer-to-peer (a workstation)",
                 4, {"float32": 82.6 * TERA, "tf32": 82.6 * TERA, "float16": 165.2 * TERA,
                     "bfloat16": 165.2 * TERA}, 1008 * GIGA, 4, 16, 1, 204.8 * GIGA,
                 peer_to_peer=False,
                 host_cores=32,
                 sources={"host_cores": "assumed: a 32-core AMD Threadripper PRO",
                          "peak_flops": _4090, "memory_bandwidth": _4090, "peer_to_peer": _NO_P2P,
                          "gpus_per_pcie_switch": "assumed: each GPU on its own CPU lanes",
                          "host_memory_bandwidth": "assumed: AMD Threadripper PRO, 8 channels "
                          "DDR4-3200"}),
    ]


CATALOGUE: dict[str, Hardware] = _catalogue()


def hardware_catalogue() -> "pd.DataFrame":
    """The machines :func:`nbreplica.forecast` knows by name: a frame with columns
    ``name`` (what ``hardware=`` takes) and ``description``."""
    import pandas as pd

    return pd.DataFrame([(h.name, h.description) for h in CATALOGUE.values()],
                        columns=["name", "description"])


def resolve_hardware(hardware: "Hardware | str") -> Hardware:
    """``hardware`` itself, or the catalogue's machine of that name.

    Raises:
        ValueError: an unknown name (the message lists the catalogue) or another type.
    """
    if isinstance(hardware, Hardware):
        return hardware
    if isinstance(hardware, str) and hardware in CATALOGUE:
        return CATALOGUE[hardware]
    raise ValueError(
        "hardware must be a nbreplica.Hardware or the name of a machine in the catalogue: "
        f"{', '.join(CATALOGUE)}. Received: hardware={hardware!r}")

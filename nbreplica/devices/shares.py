"""How much of each batch each GPU gets: its *share*, a proportion (the shares of the
devices a model runs on sum to 1). No TensorFlow here: the picker and
``nbreplica devices`` show shares too.

Shares come from the user (a sequence of positive numbers, normalised), from each
GPU's free memory, or from its description in NVML: CUDA cores x the highest SM clock
(``nvmlDeviceGetNumGpuCores`` x ``nvmlDeviceGetMaxClockInfo(NVML_CLOCK_SM)``), the
peak rate of its FP32 units. The replicator turns shares into rows per batch (largest
remainder, every replica at least one row: :mod:`nbreplica.replicator.plan`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbreplica._checks import is_number
from nbreplica._flags import SHARE_NAMES
from nbreplica.devices.records import GIB, DeviceStats

#: The names ``replicate(model, shares=...)`` takes besides a sequence of numbers
#: (``--shares`` takes them too).
SHARE_MODES = SHARE_NAMES

#: How NVML describes a GPU's speed, as messages and reports name it.
SPEED_DESCRIPTION = "CUDA cores x max SM clock (NVML)"


def normalised(shares: object, count: int) -> tuple[float, ...]:
    """``shares``, a sequence of ``count`` positive finite numbers, scaled to sum to 1.

    Raises:
        TypeError: ``shares`` is not a sequence of numbers.
        ValueError: its length is not ``count``, or a share is zero, negative, NaN or
            infinite.
    """
    if isinstance(shares, (str, bytes)) or not isinstance(shares, Sequence):
        raise TypeError(
            f"shares must be None, one of {SHARE_MODES} or a sequence of positive "
            f"numbers, one per device. Received: shares={shares!r}")
    values = list(shares)
    if not all(is_number(value) for value in values):
        raise TypeError(f"Every share must be a number. Received: shares={shares!r}")
    if len(values) != count:
        raise ValueError(
            f"shares needs one number per device: {count} devices, {len(values)} shares. "
            f"Received: shares={shares!r}")
    if not all(math.isfinite(value) and value > 0 for value in values):
        raise ValueError(
            "Every share must be a finite number > 0 (every device gets at least one "
            f"row of each batch). Received: shares={shares!r}")
    total = math.fsum(float(value) for value in values)
    return tuple(float(value) / total for value in values)


def check_share_name(shares: str) -> None:
    """Refuse a ``shares`` string that is not one of :data:`SHARE_MODES`.

    Raises:
        ValueError: ``shares`` names no way to split a batch.
    """
    if shares not in SHARE_MODES:
        raise ValueError(f"shares must be None, one of {SHARE_MODES} or a sequence of "
                         f"positive numbers, one per device. Received: shares={shares!r}")


def memory_shares(devices: Sequence[DeviceStats]) -> tuple[float, ...]:
    """Shares proportional to each device's free memory.

    Raises:
        ValueError: a device does not report its free memory (emulated, lost, or not
            told by the driver), or has none free.
    """
    shares = shares_by_index(devices, "memory")
    if len(shares) < len(devices):
        shown = ", ".join(f"GPU {device.index}: " + (
            "unknown" if device.memory_free is None else f"{device.memory_free / GIB:.1f} GiB")
            for device in devices)
        raise ValueError(
            "shares='memory' splits each batch by each GPU's free memory, which NVML must "
            f"report and which must be > 0 ({shown}). Use shares='auto' or explicit "
            "shares on these devices. Received: shares='memory'")
    return tuple(shares[device.index] for device in devices)


def speed_shares(devices: Sequence[DeviceStats]) -> tuple[float, ...] | None:
    """Shares proportional to each device's CUDA cores x max SM clock, or ``None`` when
    NVML does not describe every one of them."""
    shares = shares_by_index(devices, "auto")
    if not devices or len(shares) < len(devices):
        return None
    return tuple(shares[device.index] for device in devices)


def shares_by_index(devices: Sequence[DeviceStats], mode: str) -> dict[int, float]:
    """Each device's share of a batch split over ``devices`` by ``mode``: ``"memory"``
    (free memory) or ``"auto"`` (what NVML describes: CUDA cores x max SM clock, the
    speed ``replicate(shares="auto")`` falls back on when it cannot time the model).
    A device NVML says nothing about (lost, emulated) is left out and the others share
    the batch; no device at all: empty."""
    if mode == "memory":
        values = {d.index: float(d.memory_free) for d in devices if d.memory_free}
    else:
        values = {d.index: float(d.cuda_cores * d.max_sm_clock_mhz) for d in devices
                  if d.cuda_cores and d.max_sm_clock_mhz}
    return dict(zip(values, normalised(list(values.values()), len(values)))) if values else {}


def check_rows(shares: Sequence[float], batch_size: int) -> None:
    """Refuse shares that give some device less than one row of a ``batch_size`` batch.

    Raises:
        ValueError: a share times ``batch_size`` is below 1; the message says the
            smallest batch size that works.
    """
    smallest = min(shares)
    if smallest * batch_size >= 1 or batch_size < len(shares):
        return
    needed = math.ceil(1 / smallest - 1e-9)
    raise ValueError(
        f"A share of {smallest:.3g} gives its device {smallest * batch_size:.2f} rows of a "
        f"batch of {batch_size}, less than one: use a batch of at least {needed} rows, or "
        f"a larger share for that device. Received: shares={share_list(shares)}, "
        f"batch_size={batch_size}")


def share_list(shares: Sequence[float]) -> str:
    """``[0.5, 0.25, 0.25]``: shares as messages quote them (4 significant digits)."""
    return "[" + ", ".join(f"{share:.4g}" for share in shares) + "]"


def shares_text(shares: Sequence[float]) -> str:
    """``50% · 25% · 25%``: shares as the picker and reports show them."""
    return " · ".join(f"{100 * share:.0f}%" for share in shares)

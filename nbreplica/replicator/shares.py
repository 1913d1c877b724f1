"""``replicate(model, shares=...)``: what share of each batch every replica gets.

- ``None`` or ``"even"``: every replica the same (no replica more than one row more);
- a sequence of positive numbers, one per device: those proportions, normalised;
- ``"memory"``: proportional to each GPU's free memory, read from NVML now;
- ``"auto"``: proportional to each device's measured speed (the template timed alone
  on each device, :mod:`nbreplica.replicator.calibration`); where the template cannot
  be timed, to NVML's description of each GPU (CUDA cores x max SM clock); where NVML
  does not describe them either, even, with a warning.

:class:`Shares` keeps the proportions and where they came from
(``ReplicatedModel.shares`` and ``.shares_source``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nbreplica._errors import caller_stacklevel
from nbreplica.devices import snapshot
from nbreplica.devices.cuda_visible import nvml_index_of
from nbreplica.devices.records import DeviceStats
from nbreplica.devices.shares import (
    SPEED_DESCRIPTION,
    check_rows,
    check_share_name,
    memory_shares,
    normalised,
    shares_text,
    speed_shares,
)
from nbreplica.gpus.available import Accelerator
from nbreplica.replicator.calibration import CannotCalibrate, Clock, calibrate

#: What ``ReplicatedModel.shares_source`` says, by where the shares came from.
SOURCES = ("even", "given", "memory", "calibration", "nvml")

_DEFAULT_BATCH_SIZE = 32  # what Model.fit, evaluate and predict use for arrays


@dataclass(frozen=True)
class Shares:
    """The proportions of each batch the replicas get (summing to 1), and
    ``source``, one of :data:`SOURCES`. ``split`` is what the batch plan splits by:
    ``None`` for an even split."""

    values: tuple[float, ...]
    source: str

    @property
    def split(self) -> tuple[float, ...] | None:
        return None if self.source == "even" else self.values

    @classmethod
    def even(cls, count: int) -> Shares:
        """The same share for each of ``count`` replicas."""
        return cls((1.0 / count,) * count, "even")


def resolve_shares(shares: Any, template: keras.Model,
                   accelerators: Sequence[Accelerator], *,
                   clock: Clock | None = None) -> Shares:
    """The :class:`Shares` the ``shares`` argument of ``replicate`` asks for.

    ``clock`` is the calibration's clock (see
    :func:`~nbreplica.replicator.calibration.calibrate`).

    Raises:
        TypeError, ValueError: ``shares`` is malformed (see
            :func:`nbreplica.devices.shares.normalised`), or ``"memory"`` on devices
            whose free memory NVML does not report.
    """
    count = len(accelerators)
    if shares is None or (isinstance(shares, str) and shares == "even"):
        return Shares.even(count)
    if isinstance(shares, str):
        if shares == "memory":
            return Shares(memory_shares(_stats_of(accelerators)), "memory")
        if shares == "auto":
            return _auto(template, accelerators, clock)
        check_share_name(shares)  # raises: every name it accepts is handled above
    return Shares(normalised(shares, count), "given")


def split_text(shares: Shares) -> str:
    """How a batch is split, as reports show it: ``"even 50% · 50%"``,
    ``"calibration 27% · 25% · 24% · 24%"``."""
    return f"{shares.source} {shares_text(shares.values)}"


def shares_from_times(seconds: Sequence[float]) -> tuple[float, ...]:
    """Shares proportional to each device's speed, from its seconds per step."""
    return normalised([1.0 / max(s, 1e-12) for s in seconds], len(seconds))


def check_batch(shares: Shares, x: Any, batch_size: int | None) -> None:
    """Refuse ``shares`` that give a replica less than one row of the full batches of
    ``fit``/``evaluate``/``predict(x, batch_size=...)`` (a shorter last batch gives
    every replica one row at least). Data whose batch size is not known beforehand
    (generators, datasets without a fixed batch size) are not checked.

    Raises:
        ValueError: see :func:`nbreplica.devices.shares.check_rows`.
    """
    if shares.split is None:
        return
    rows = _full_batch(x, batch_size)
    if rows is not None:
        check_rows(shares.values, rows)


def _full_batch(x: Any, batch_size: int | None) -> int | None:
    if isinstance(x, tf.data.Dataset):
        first = tf.nest.flatten(x.element_spec)[0]
        return first.shape[0] if first.shape.rank else None
    leaves = tf.nest.flatten(x) if x is not None else []
    if not leaves or not hasattr(leaves[0], "shape") or not np.ndim(leaves[0]):
        return None
    return min(batch_size or _DEFAULT_BATCH_SIZE, int(np.shape(leaves[0])[0]))


def _auto(template: keras.Model, accelerators: Sequence[Accelerator],
          clock: Clock | None) -> Shares:
    try:
        seconds = calibrate(template, accelerators, **({} if clock is None else {"clock": clock}))
    except CannotCalibrate as reason:
        described = speed_shares(_stats_of(accelerators))
        if described is not None:
            return Shares(described, "nvml")
        warnings.warn(
            f"shares='auto' splits each batch evenly: the template cannot be timed "
            f"({reason}) and NVML does not describe every device ({SPEED_DESCRIPTION}). "
            "Give explicit shares to split unevenly. Received: shares='auto'",
            stacklevel=caller_stacklevel())
        return Shares.even(len(accelerators))
    return Shares(shares_from_times(seconds), "calibration")


def _stats_of(accelerators: Sequence[Accelerator]) -> list[DeviceStats]:
    """NVML's record of each accelerator, by its NVML index (a device NVML does not
    list, as an emulated one without the simulated driver: a record without memory or
    speed)."""
    by_index = {device.index: device for device in snapshot()}
    return [by_index.get(nvml_index_of(a)) or DeviceStats(a.index, a.name, emulated=a.emulated)
            for a in accelerators]

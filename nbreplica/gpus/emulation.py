"""How many emulated GPUs this process asked for (plain state, no TensorFlow).

The device and notebook layers read this to label emulated devices without importing
TensorFlow; :func:`nbreplica.emulate_gpus` is what writes it.
"""

from __future__ import annotations

import os

EMULATE_ENV_VAR = "NBREPLICA_EMULATE_GPUS"

_emulated_count = 0


def parse_count(value: object, *, name: str) -> int:
    """Return ``value`` as a device count >= 1, or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(
            f"{name} must be a whole number of devices >= 1. Received: {name}={value!r}"
        )
    try:
        count = int(value)
    except ValueError:
        raise ValueError(
            f"{name} must be a whole number of devices >= 1. Received: {name}={value!r}"
        ) from None
    if count < 1:
        raise ValueError(
            f"{name} must be a whole number of devices >= 1. Received: {name}={value!r}"
        )
    return count


def emulated_name(index: int) -> str:
    """How emulated GPU ``index`` is named wherever it shows."""
    return f"Emulated GPU {index} (TensorFlow logical CPU device)"


def requested_from_env() -> int:
    """The count in ``NBREPLICA_EMULATE_GPUS``, or 0 when it is unset or empty."""
    raw = os.environ.get(EMULATE_ENV_VAR, "").strip()
    return parse_count(raw, name=EMULATE_ENV_VAR) if raw else 0


def emulated_count() -> int:
    """How many emulated GPUs are active in this process (0: none)."""
    return _emulated_count


def record(count: int) -> None:
    global _emulated_count
    _emulated_count = count

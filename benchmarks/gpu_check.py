"""Real-GPU self-check: does ``nbreplica.snapshot()`` read what ``nvidia-smi`` reads,
and what does a 10 Hz ``Sampler`` cost?

For a machine with an NVIDIA driver and ``nvidia-smi``; needs only nvidia-ml-py and
pandas (no TensorFlow), and runs from a source checkout::

    python benchmarks/gpu_check.py [--seconds 5] [--rate 10]

It prints:

1. one row per GPU and field: nbreplica's value, ``nvidia-smi --query-gpu=...
   --format=csv,noheader,nounits``'s, the tolerance and whether they agree. Values
   that move (memory, utilization, temperature, power) agree when nvidia-smi's lies
   within the tolerance of the range of two snapshots taken just before and just after
   it; names, UUIDs and totals must match exactly (memory to the MiB);
2. the sampler's cost: a ``Sampler`` at ``--rate`` Hz for ``--seconds`` s, its samples
   against those due, the time of one NVML pass, and the CPU it used.

Exits with 0 when every field agrees, 1 when one does not, and 2 (after one line
saying why) when there is no NVIDIA driver or no nvidia-smi.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a source checkout

import pandas as pd  # noqa: E402

import nbreplica  # noqa: E402

MIB = 1024**2
EXIT_DISAGREES = 1
EXIT_CANNOT_CHECK = 2


@dataclass(frozen=True)
class Field:
    """One ``--query-gpu`` field, the DeviceStats field it matches, the factor from
    nbreplica's unit to nvidia-smi's, and the tolerance (``None``: must be equal)."""

    query: str
    attribute: str
    scale: float = 1.0
    tolerance: float | None = None


FIELDS = (
    Field("index", "index"),
    Field("name", "name"),
    Field("uuid", "uuid"),
    Field("memory.total", "memory_total", 1 / MIB, tolerance=1),
    Field("memory.used", "memory_used", 1 / MIB, tolerance=64),
    Field("memory.free", "memory_free", 1 / MIB, tolerance=64),
    Field("utilization.gpu", "utilization_gpu", tolerance=10),
    Field("utilization.memory", "utilization_memory", tolerance=10),
    Field("temperature.gpu", "temperature", tolerance=2),
    Field("power.draw", "power_draw", tolerance=15),
    Field("enforced.power.limit", "power_limit", tolerance=1),
)
_MISSING = {"[N/A]", "[Not Supported]", "N/A", ""}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="sampling time (5)")
    parser.add_argument("--rate", type=float, default=10.0, help="samples per second (10)")
    args = parser.parse_args(argv)

    before = nbreplica.snapshot()
    if not before:
        print(f"gpu_check: no NVIDIA GPU to check: {nbreplica.nvml_status()}")
        return EXIT_CANNOT_CHECK
    smi = shutil.which("nvidia-smi")
    if smi is None:
        print("gpu_check: nvidia-smi is not on PATH (it comes with the NVIDIA driver)")
        return EXIT_CANNOT_CHECK
    query = [smi, f"--query-gpu={','.join(f.query for f in FIELDS)}",
             "--format=csv,noheader,nounits"]
    done = subprocess.run(query, capture_output=True, text=True, timeout=60)
    after = nbreplica.snapshot()
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        print(f"gpu_check: nvidia-smi failed (exit {done.returncode}): {reason[0]}")
        return EXIT_CANNOT_CHECK

    print(nbreplica.nvml_status())
    table = agreement(before, after, list(csv.reader(done.stdout.strip().splitlines())))
    print(table.to_string(index=False))
    print(sampler_cost(args.seconds, args.rate))
    disagreeing = int((~table["agrees"]).sum())
    print("every field agrees" if not disagreeing else f"{disagreeing} field(s) disagree")
    return EXIT_DISAGREES if disagreeing else 0


def agreement(before: Sequence[nbreplica.DeviceStats], after: Sequence[nbreplica.DeviceStats],
              rows: Sequence[Sequence[str]]) -> pd.DataFrame:
    """One row per GPU and field: both values, the tolerance, and whether they agree.

    ``rows`` are nvidia-smi's CSV rows, one per GPU in :data:`FIELDS` order; a GPU
    that only one side reports disagrees on every field.
    """
    records = []
    for position in range(max(len(before), len(rows))):
        values = [cell.strip() for cell in rows[position]] if position < len(rows) else []
        for column, field in enumerate(FIELDS):
            ours = [_ours(devices, position, field) for devices in (before, after)]
            theirs = values[column] if column < len(values) else None
            records.append({
                "gpu": position,
                "field": field.query,
                "nbreplica": _shown(ours),
                "nvidia-smi": theirs,
                "tolerance": "exact" if field.tolerance is None else f"±{field.tolerance:g}",
                "agrees": _agrees(ours, theirs, field),
            })
    return pd.DataFrame(records)


def sampler_cost(seconds: float, rate: float) -> str:
    """Run a ``Sampler`` at ``rate`` Hz for ``seconds`` and say what it cost."""
    passes: list[float] = []

    def timed() -> list[nbreplica.DeviceStats]:
        began = time.perf_counter()
        devices = nbreplica.snapshot()
        passes.append(time.perf_counter() - began)
        return devices

    cpu = time.process_time()
    with nbreplica.Sampler(interval=1 / rate, source=timed) as sampler:
        time.sleep(seconds)
    cpu = time.process_time() - cpu
    if not passes:
        return f"sampler: no sample in {seconds:g} s at {rate:g} Hz"
    return (
        f"sampler at {rate:g} Hz for {seconds:g} s: {sampler.sample_count} samples "
        f"({round(seconds * rate)} due); one NVML pass {statistics.median(passes) * 1e3:.3f} ms "
        f"median, {max(passes) * 1e3:.3f} ms max; CPU {100 * cpu / seconds:.2f} % of one core"
    )


def _ours(devices: Sequence[nbreplica.DeviceStats], position: int,
          field: Field) -> float | str | None:
    if position >= len(devices):
        return None
    value = getattr(devices[position], field.attribute)
    return value * field.scale if isinstance(value, (int, float)) and field.scale != 1 else value


def _shown(ours: Sequence[float | str | None]) -> str:
    first, last = (v if not isinstance(v, float) else round(v, 1) for v in ours)
    return str(first) if first == last else f"{first} .. {last}"


def _agrees(ours: Sequence[float | str | None], theirs: str | None, field: Field) -> bool:
    if theirs is None or theirs in _MISSING or None in ours:
        return (theirs is None or theirs in _MISSING) and None in ours
    if field.tolerance is None:
        return all(str(value) == theirs for value in ours)
    try:
        value = float(theirs)
    except ValueError:
        return False
    low, high = min(ours), max(ours)  # type: ignore[type-var]
    return low - field.tolerance <= value <= high + field.tolerance


if __name__ == "__main__":
    sys.exit(main())

"""How long a 1-2-4-8 sweep of the built-in MLP takes, and how wide its intervals get.

    python benchmarks/bench_sweep.py [--target-ci 0.10] [--budget 180]
                                     [--fixed 6x30] [--strategy split] [--json out.json]

Runs, one after the other in this process, a fixed sweep (``--fixed REPEATSxSTEPS``;
``--fixed none`` skips it) and an adaptive one (``--target-ci``, ``--budget``, steps
calibrated), and prints one row per sweep: the time taken against the budget, the
points measured, and the full width of each speedup interval relative to its median
at 2, 4 and 8 devices, with whether it met the target.

Runs on 8 emulated GPUs unless NBREPLICA_EMULATE_GPUS says otherwise (real GPUs: set
it to nothing). Stores into a temporary results file, so the user's store is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")  # before TensorFlow starts

import nbreplica  # noqa: E402
from nbreplica import _tensorflow  # noqa: E402

_tensorflow.load()  # quietly, before the sweep modules import TensorFlow

from nbreplica.bench.models import BUILTIN_MODELS  # noqa: E402
from nbreplica.bench.progress import describe_width  # noqa: E402
from nbreplica.bench.result import SweepResult  # noqa: E402

DEVICES = (1, 2, 4, 8)


def fixed_setting(text: str) -> tuple[int, int] | None:
    if text == "none":
        return None
    repeats, steps = (int(part) for part in text.split("x"))
    return repeats, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-ci", type=float, default=0.10)
    parser.add_argument("--budget", type=float, default=180.0)
    parser.add_argument("--fixed", type=fixed_setting, default=(6, 30),
                        help="REPEATSxSTEPS of the fixed sweep, or none")
    parser.add_argument("--strategy", default="split")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    mlp = BUILTIN_MODELS["mlp"]
    x, y = mlp.data(4096)
    settings: list[tuple[str, dict[str, Any]]] = []
    if args.fixed:
        repeats, steps = args.fixed
        settings.append((f"fixed {repeats} × {steps}",
                         dict(repeats=repeats, steps=steps, target_ci=None)))
    settings.append((f"adaptive {args.target_ci:.0%}, {args.budget:g} s",
                     dict(target_ci=args.target_ci, budget=args.budget)))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, options in settings:
            started = time.perf_counter()
            result = nbreplica.sweep(
                mlp.model_fn, x, y, devices=DEVICES, batch_size=args.batch_size,
                strategy=tuple(args.strategy.split(",")),
                results_path=Path(scratch) / "results.sqlite", progress=False, **options,
            )
            seconds = time.perf_counter() - started
            print(f"\n{label}\n{result.table()}")
            rows.append(row(label, result, seconds, options.get("budget")))
    print()
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def row(label: str, result: SweepResult, seconds: float,
        budget: float | None) -> dict[str, Any]:
    frame = result.frame[result.frame["devices"] > 1]
    return {
        "sweep": label,
        "seconds": round(seconds, 1),
        "budget_s": budget,
        "points": len(result.runs),
        "repeats": {f"{r.strategy}×{r.devices}": int(r.repeats)
                    for r in frame.itertuples()},
        "timed_steps": int(result.runs["steps"].iloc[0]),
        "widths": {f"{r.strategy}×{r.devices}": describe_width(r.interval_width)
                   for r in frame.itertuples()},
        "target_met": {f"{r.strategy}×{r.devices}": (
            None if pd.isna(r.target_met) else bool(r.target_met))
            for r in frame.itertuples()},
    }


def render(rows: list[dict[str, Any]]) -> str:
    """The sweeps side by side as a Markdown table."""
    points = list(rows[0]["widths"])
    header = ["sweep", "time s (budget)", "points", "steps/point",
              *(f"width {point} (repeats)" for point in points)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for item in rows:
        budget = f" ({item['budget_s']:g})" if item["budget_s"] else ""
        cells = [item["sweep"], f"{item['seconds']:.0f}{budget}", str(item["points"]),
                 str(item["timed_steps"])]
        for point in points:
            width, met = item["widths"][point], item["target_met"][point]
            mark = "" if met is None else (" ✓" if met else " ✗")
            cells.append(f"{width}{mark} ({item['repeats'][point]})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

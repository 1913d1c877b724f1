"""How long a 1-2-4-8 sweep of the built-in MLP takes, and how wide its intervals get.

    python benchmarks/bench_sweep.py [--target-ci 0.10] [--budget 240]
                                     [--fixed 6x30] [--strategy split] [--json out.json]
                                     [--runs sweep-report/runs.csv]

Runs, one after the other in this process, a fixed sweep (``--fixed REPEATSxSTEPS``;
``--fixed none`` skips it) and an adaptive one (``--target-ci``, ``--budget``, steps
calibrated), and prints two rows per sweep, one per interval estimator over the same
measured runs: before (the order-statistic interval of the median speedup, which
needs 6 repeats for 95%) and after (the Student-t interval of the mean log of the
paired speedups, at the sequential level for an adaptive sweep). Each row gives the
time taken against the budget, the points measured, and at 2, 4 and 8 devices the
full width of the speedup interval relative to its figure, whether it met the
target, the repeats, and the first round from which it stayed within the target.
``--runs runs.csv`` recomputes both rows from a saved report's runs instead.

Runs on 8 emulated GPUs unless NBREPLICA_EMULATE_GPUS says otherwise (real GPUs: set
it to nothing). Stores into a temporary results file, so the user's store is untouched.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from _quiet import start_tensorflow

start_tensorflow()  # quietly, before the sweep modules import TensorFlow

import nbreplica  # noqa: E402
from nbreplica.bench import defaults  # noqa: E402
from nbreplica.bench.models import BUILTIN_MODELS  # noqa: E402
from nbreplica.bench.progress import describe_width  # noqa: E402
from nbreplica.bench.stats import (  # noqa: E402
    Interval,
    geometric_interval,
    median_interval,
    relative_width,
)
from nbreplica.strategy.names import BASELINE  # noqa: E402

DEVICES = (1, 2, 4, 8)


def fixed_setting(text: str) -> tuple[int, int] | None:
    if text == "none":
        return None
    repeats, steps = (int(part) for part in text.split("x"))
    return repeats, steps


#: The interval estimators compared: before and after the paired log-ratio t interval.
ESTIMATORS = {
    "order statistics (before)": lambda values, sequential: median_interval(values),
    "t on log ratios (after)": lambda values, sequential: geometric_interval(
        values, sequential=sequential),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-ci", type=float, default=defaults.TARGET_CI)
    parser.add_argument("--budget", type=float, default=defaults.BUDGET_S)
    parser.add_argument("--fixed", type=fixed_setting, default=(6, 30),
                        help="REPEATSxSTEPS of the fixed sweep, or none")
    parser.add_argument("--strategy", default="split")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=Path, help="a saved report's runs.csv to "
                        "compare the estimators on, instead of sweeping")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.runs:
        runs = pd.read_csv(args.runs)
        rows = compared(str(args.runs), runs, math.nan, None, args.target_ci)
    else:
        rows = [row for label, runs, seconds, budget in sweeps(args)
                for row in compared(label, runs, seconds, budget, args.target_ci)]
    print()
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def sweeps(args: argparse.Namespace) -> list[tuple[str, pd.DataFrame, float, float | None]]:
    """Run the fixed and the adaptive sweep: (label, runs, seconds, budget) of each."""
    mlp = BUILTIN_MODELS["mlp"]
    x, y = mlp.data(4096)
    settings: list[tuple[str, dict[str, Any]]] = []
    if args.fixed:
        repeats, steps = args.fixed
        settings.append((f"fixed {repeats} × {steps}",
                         dict(repeats=repeats, steps=steps, target_ci=None)))
    settings.append((f"adaptive {args.target_ci:.0%}, {args.budget:g} s",
                     dict(target_ci=args.target_ci, budget=args.budget)))
    done = []
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
            done.append((label, result.runs, seconds, options.get("budget")))
    return done


def compared(label: str, runs: pd.DataFrame, seconds: float, budget: float | None,
             target: float) -> list[dict[str, Any]]:
    """One row per estimator over the same ``runs``."""
    sequential = bool(pd.to_numeric(runs["target_ci"], errors="coerce").notna().any())
    points = runs[runs["strategy"] != BASELINE]
    rows = []
    for name, estimator in ESTIMATORS.items():
        cells = {}
        for (strategy, devices), group in points.groupby(["strategy", "devices"], sort=False):
            speedups = group.sort_values("repeat")["speedup"].to_numpy()
            width = _width(estimator(speedups, sequential))
            cells[f"{strategy}×{devices}"] = {
                "width": describe_width(width), "met": bool(width <= target),
                "repeats": len(speedups),
                "met_from": _met_from(speedups, estimator, sequential, target)}
        rows.append({"sweep": f"{label} · {name}", "seconds": round(seconds, 1),
                     "budget_s": budget, "points": len(runs),
                     "timed_steps": int(runs["steps"].iloc[0]), "cells": cells})
    return rows


def _width(interval: Interval) -> float:
    return relative_width(interval, 0.95)


def _met_from(speedups: Any, estimator: Any, sequential: bool, target: float) -> int | None:
    """The first round from which the interval over the rounds so far stays within
    ``target``; ``None`` when it is not within it at the last."""
    since = None
    for rounds in range(2, len(speedups) + 1):
        within = _width(estimator(speedups[:rounds], sequential)) <= target
        since = (since or rounds) if within else None
    return since


def render(rows: list[dict[str, Any]]) -> str:
    """The sweeps and estimators side by side as a Markdown table."""
    points = list(rows[0]["cells"])
    header = ["sweep · estimator", "time s (budget)", "points", "steps/point",
              *(f"width {point} (repeats, within target from round)" for point in points)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for item in rows:
        budget = f" ({item['budget_s']:g})" if item["budget_s"] else ""
        seconds = "–" if math.isnan(item["seconds"]) else f"{item['seconds']:.0f}"
        cells = [item["sweep"], f"{seconds}{budget}", str(item["points"]),
                 str(item["timed_steps"])]
        for point in points:
            cell = item["cells"][point]
            mark = " ✓" if cell["met"] else " ✗"
            since = "never" if cell["met_from"] is None else str(cell["met_from"])
            cells.append(f"{cell['width']}{mark} ({cell['repeats']}, {since})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

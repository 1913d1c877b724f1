"""How long a 1-2-4-8 sweep of the built-in MLP takes, and how wide its intervals are.

    python benchmarks/bench_sweep.py [--strategy split,mirrored] [--repeats 3] [--json out.json]

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

os.environ.setdefault("NBREPLICA_EMULATE_GPUS", "8")  # before TensorFlow starts
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import nbreplica  # noqa: E402
from nbreplica.bench.models import BUILTIN_MODELS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="split")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    mlp = BUILTIN_MODELS["mlp"]
    x, y = mlp.data(4096)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = nbreplica.sweep(
            mlp.model_fn, x, y, devices=(1, 2, 4, 8), batch_size=args.batch_size,
            strategy=tuple(args.strategy.split(",")), repeats=args.repeats,
            steps=args.steps, results_path=Path(scratch) / "results.sqlite",
            progress=False,
        )
        seconds = time.perf_counter() - started

    frame = result.frame
    scaled = frame[frame["devices"] > 1]
    widths = {
        column: ((scaled[f"{column}_high"] - scaled[f"{column}_low"]) / scaled[column])
        for column in ("samples_per_s", "speedup")
    }
    figures = {
        "sweep_seconds": round(seconds, 1),
        "points": len(result.runs),
        "seconds_per_point": round(seconds / len(result.runs), 2),
        "first_step_s_median": round(float(result.runs["first_step_s"].median()), 3),
        **{f"{column}_interval_width_median": round(float(width.median()), 3)
           for column, width in widths.items()},
        **{f"{column}_interval_width_max": round(float(width.max()), 3)
           for column, width in widths.items()},
        "settings": {"strategy": args.strategy, "repeats": args.repeats,
                     "steps": args.steps, "batch_size": args.batch_size,
                     "emulated": bool(result.runs["emulated"].all())},
    }
    print(result.table())
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

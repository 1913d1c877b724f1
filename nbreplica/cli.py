"""The ``nbreplica`` command (also ``python -m nbreplica``).

``nbreplica sweep`` measures a built-in model with synthetic data, so it runs on any
machine: ``nbreplica sweep --model mlp --devices 1,2,4,8 --emulate 8 --out report``.
``nbreplica worker JOB`` runs one worker of a multi-worker cluster whose ``TF_CONFIG``
a cluster manager set (see :mod:`nbreplica.cluster.worker`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from typing import TYPE_CHECKING

from nbreplica import _tensorflow
from nbreplica._errors import NbreplicaError
from nbreplica.cluster import worker

if TYPE_CHECKING:
    from nbreplica.bench.result import SweepResult

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbreplica", description="Data-parallel Keras training on one machine."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "sweep",
        help="measure training speedup over 1, 2, 4, 8 devices and write a report",
        description="Train a built-in model on synthetic data on growing device "
        "counts; print a table, store every point, and write PNG, CSV and HTML.",
    )
    run.add_argument("--model", default="mlp",
                     help="built-in model: mlp or cnn (default: mlp)")
    run.add_argument("--devices", type=_counts, default=(1, 2, 4, 8),
                     help="comma-separated device counts (default: 1,2,4,8)")
    run.add_argument("--emulate", type=int, metavar="N",
                     help="emulate N GPUs with logical CPU devices (machines without GPUs)")
    run.add_argument("--out", default="nbreplica-report",
                     help="directory for the report (default: ./nbreplica-report)")
    run.add_argument("--batch-size", type=int, default=256,
                     help="global batch (strong scaling) or per-device batch (weak); "
                     "default: 256")
    run.add_argument("--scaling", choices=("strong", "weak"), default="strong")
    run.add_argument("--strategy", type=_strategies, default=("split",),
                     help="comma-separated: split, mirrored, multiworker (worker "
                     "processes of this machine) (default: split)")
    run.add_argument("--repeats", type=int, default=3, help="default: 3")
    run.add_argument("--steps", type=int, default=30,
                     help="measured steps per point (default: 30)")
    run.add_argument("--warmup-steps", type=int, default=3, help="default: 3")
    run.add_argument("--samples", type=int, default=4096,
                     help="synthetic examples (default: 4096)")
    run.add_argument("--name", help="sweep name in the results store")
    run.add_argument("--results", metavar="PATH",
                     help="results file (default: $NBREPLICA_RESULTS or "
                     "~/.nbreplica/results.sqlite)")
    run.add_argument("--threshold", type=float, default=0.7,
                     help="efficiency threshold of the recommended device count "
                     "(default: 0.7)")
    run.add_argument("--verbose", action="store_true",
                     help="show TensorFlow's start-up messages")
    run.set_defaults(run=_run_sweep)
    one_worker = commands.add_parser(
        "worker",
        help="run a function as one worker of the cluster that TF_CONFIG describes",
        description=worker.DESCRIPTION,
    )
    worker.add_arguments(one_worker)
    one_worker.set_defaults(
        run=lambda args: worker.run_from_command_line(args, "nbreplica worker"))
    return parser


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, e.g. 1,2,4,8. Received: {text!r}"
        ) from None


def _strategies(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _run_sweep(args: argparse.Namespace) -> int:
    _tensorflow.load(quiet=not args.verbose)
    # Imported only now: each of them imports TensorFlow, which must start quietly.
    from nbreplica.accelerators import emulate_gpus
    from nbreplica.bench.models import BUILTIN_MODELS
    from nbreplica.bench.result import SweepInterrupted
    from nbreplica.bench.runner import sweep

    if args.model not in BUILTIN_MODELS:
        print(f"nbreplica sweep: error: there is no built-in model {args.model!r}; "
              f"choose one of {', '.join(sorted(BUILTIN_MODELS))}. "
              f"Received: --model={args.model!r}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.emulate is not None:
            emulate_gpus(args.emulate)
        builtin = BUILTIN_MODELS[args.model]
        x, y = builtin.data(args.samples)
        result = sweep(
            builtin.model_fn, x, y,
            devices=args.devices,
            batch_size=args.batch_size,
            scaling=args.scaling,
            strategy=args.strategy,
            repeats=args.repeats,
            steps=args.steps,
            warmup_steps=args.warmup_steps,
            name=args.name,
            results_path=args.results,
            efficiency_threshold=args.threshold,
        )
    except SweepInterrupted as stop:
        _report(stop.result, args.out)
        print(f"\n{stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NbreplicaError, ValueError) as error:
        print(f"nbreplica sweep: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    _report(result, args.out)
    return 0


def _report(result: SweepResult, out: str) -> None:
    print(result.table())
    if result.runs.empty:
        return
    paths = result.save(out)
    print(f"\nReport: {paths['report']}")
    print(f"Files:  {', '.join(str(path) for key, path in paths.items() if key != 'report')}")
    print(f"Stored: {result.results_path} (sweep {result.name!r}, id {result.sweep_id})")

"""The ``nbreplica`` command (also ``python -m nbreplica``).

``nbreplica sweep`` measures a built-in model with synthetic data, so it runs on any
machine: ``nbreplica sweep --model mlp --devices 1,2,4,8 --emulate 8 --out report``.
``nbreplica forecast`` forecasts how a model's training step scales on a real multi-GPU
machine of the catalogue, from the step's traced graph (no GPU needed):
``nbreplica forecast --model mlp --hardware dgx-a100 --out forecast``.
``nbreplica devices`` shows the GPUs and their processes (``--json``, ``--watch``); it
loads no TensorFlow, and neither does ``nbreplica compare NAME_A NAME_B``, which sets two
stored sweeps side by side.
``nbreplica worker JOB`` runs one worker of a multi-worker cluster whose ``TF_CONFIG``
a cluster manager set (see :mod:`nbreplica.cluster.worker`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbreplica import _flags, _tensorflow
from nbreplica._errors import NbreplicaError
from nbreplica.bench import defaults
from nbreplica.cluster import worker
from nbreplica.strategy.names import MULTIWORKER

if TYPE_CHECKING:
    import keras

    from nbreplica.bench.result import SweepResult
    from nbreplica.forecasting.report import Forecast

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
    _add_sweep_command(commands)
    _add_forecast_command(commands)
    _add_devices_command(commands)
    _add_compare_command(commands)
    one_worker = commands.add_parser(
        "worker",
        help="run a function as one worker of the cluster that TF_CONFIG describes",
        description=worker.DESCRIPTION,
    )
    worker.add_arguments(one_worker)
    one_worker.set_defaults(
        run=lambda args: worker.run_from_command_line(args, "nbreplica worker"))
    return parser


def _add_sweep_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "sweep",
        help="measure training speedup over 1, 2, 4, 8 devices and write a report",
        description="Train a built-in model on synthetic data on growing device "
        "counts; print a table, store every point, and write PNG, CSV and HTML.",
    )
    run.add_argument("--model", default="mlp",
                     help="built-in model: mlp or cnn (default: mlp)")
    run.add_argument("--devices", type=_flags.whole_numbers("--devices", 1),
                     default=(1, 2, 4, 8),
                     help="comma-separated device counts (default: 1,2,4,8)")
    run.add_argument("--emulate", type=_flags.positive("--emulate"), metavar="N",
                     help="emulate N GPUs with logical CPU devices (machines without GPUs)")
    run.add_argument("--out", default="nbreplica-report",
                     help="directory for the report (default: ./nbreplica-report)")
    run.add_argument("--batch-size", type=_flags.positive("--batch-size"), default=256,
                     help="global batch (strong scaling) or per-device batch (weak); "
                     "default: 256")
    run.add_argument("--scaling", choices=("strong", "weak"), default="strong",
                     help="strong: every device count trains the same global batch "
                     "(--batch-size), split across the devices, and the speedup is the "
                     "time saved; weak: every device trains --batch-size, so the global "
                     "batch grows with the devices, and the speedup is the work added "
                     "(default: strong)")
    run.add_argument("--strategy", type=_flags.comma_list, default=("split",),
                     help="comma-separated: split, mirrored, multiworker (worker "
                     "processes of this machine) (default: split)")
    run.add_argument("--forecast", metavar="HARDWARE",
                     help="also forecast the model on HARDWARE, a machine of "
                     "'nbreplica forecast --list-hardware', and show it beside the "
                     "measurements")
    run.add_argument("--shares", type=_flags.shares, metavar="SHARES",
                     help="how split points split each batch: auto, memory, even "
                     "(default) or one proportion per device, e.g. 2,1,1,1 (a point on "
                     "fewer devices uses the first ones)")
    _add_precision_arguments(run)
    run.add_argument("--samples", type=_flags.positive("--samples"), default=4096,
                     help="synthetic examples (default: 4096)")
    run.add_argument("--name", help="sweep name in the results store")
    _add_results_argument(run)
    run.add_argument("--threshold", type=float, default=defaults.EFFICIENCY_THRESHOLD,
                     help="efficiency threshold of the recommended device count "
                     f"(default: {defaults.EFFICIENCY_THRESHOLD})")
    run.add_argument("--mlflow", action="store_true",
                     help="also log the sweep to MLflow (MLFLOW_TRACKING_URI, "
                     "MLFLOW_EXPERIMENT_NAME): a parent run, one child run per point, the "
                     "report as artifacts; needs nbreplica[mlflow]")
    run.add_argument("--verbose", action="store_true",
                     help="show TensorFlow's start-up messages")
    run.set_defaults(run=_run_sweep)


def _add_compare_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "compare",
        help="set two stored sweeps side by side: samples/s, ratio, beyond both intervals",
        description="For every strategy and device count of two stored sweeps (e.g. "
        "before and after upgrading TensorFlow): each one's samples/s with its interval, "
        "the ratio B/A, and whether the difference is beyond both intervals.",
    )
    run.add_argument("name_a", metavar="NAME_A", help="the first sweep's name or id (A)")
    run.add_argument("name_b", metavar="NAME_B", help="the second sweep's name or id (B)")
    _add_results_argument(run)
    run.set_defaults(run=_run_compare)


def _add_results_argument(run: argparse.ArgumentParser) -> None:
    run.add_argument("--results", metavar="PATH",
                     help="results file (default: $NBREPLICA_RESULTS or "
                     "~/.nbreplica/results.sqlite)")


def _run_compare(args: argparse.Namespace) -> int:
    from nbreplica.bench.compare import compare

    try:
        comparison = compare(args.name_a, args.name_b, results_path=args.results)
    except (FileNotFoundError, LookupError, NbreplicaError) as error:
        print(f"nbreplica compare: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(comparison.table())
    return 0


def _add_precision_arguments(run: argparse.ArgumentParser) -> None:
    """The sweep's options of how long each point is measured, and how often."""
    run.add_argument("--repeats", type=_flags.positive("--repeats"), default=defaults.REPEATS,
                     help="repeats of every point; an adaptive sweep adds more "
                     f"(default: {defaults.REPEATS})")
    run.add_argument("--steps", type=_flags.positive("--steps"),
                     help="measured steps per point (default: calibrated from a first "
                     "baseline run)")
    run.add_argument("--target-ci", type=_flags.target_ci, default=defaults.TARGET_CI,
                     metavar="WIDTH",
                     help="add repeats until every speedup interval is at most WIDTH "
                     "wide, relative to the speedup; 0 measures exactly --repeats "
                     f"repeats (default: {defaults.TARGET_CI})")
    run.add_argument("--budget", type=_flags.seconds("--budget"), default=defaults.BUDGET_S,
                     metavar="SECONDS", help="time an adaptive sweep may take "
                     f"(default: {defaults.BUDGET_S:g})")
    run.add_argument("--warmup-steps", type=_flags.positive("--warmup-steps"),
                     default=defaults.WARMUP_STEPS, metavar="N",
                     help="untimed training steps before each point's timed ones: the "
                     "first traces the step function, the others let the input pipeline "
                     f"and memory settle (default: {defaults.WARMUP_STEPS})")


def _add_forecast_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "forecast",
        help="forecast how a model's training step scales on a real multi-GPU machine",
        description="Trace a model's replicated training step (it is not run; emulated "
        "devices do on a machine without GPUs) and forecast its step time, speedup and "
        "bottleneck on each GPU count of a machine of the catalogue; print the forecast "
        "and what bounds it, and with --out write forecast.csv and forecast.png.",
    )
    run.add_argument("--model", default="mlp",
                     help="built-in model (mlp or cnn), or module:function returning a "
                     "built, compiled Keras model (default: mlp)")
    run.add_argument("--hardware", metavar="NAME",
                     help="the machine, a name from --list-hardware (default: dgx-a100)")
    run.add_argument("--list-hardware", action="store_true",
                     help="print the machines of the catalogue and exit")
    run.add_argument("--devices", type=_flags.whole_numbers("--devices", 1),
                     help="comma-separated GPU counts (1 is always added: the baseline) "
                     "(default: 1,2,4,8)")
    run.add_argument("--batch-size", type=_flags.positive("--batch-size"), default=256,
                     help="per-device batch (weak scaling) or global batch (strong); "
                     "default: 256")
    run.add_argument("--strategy", choices=("split", "mirrored"),
                     help="split: nbreplica.replicate; mirrored: MirroredStrategy with "
                     "NCCL all-reduce (default: split)")
    run.add_argument("--scaling", choices=("weak", "strong"),
                     help="weak: every GPU trains --batch-size; strong: --batch-size is "
                     "split over the GPUs (default: weak)")
    run.add_argument("--step-time", type=_flags.seconds("--step-time"), metavar="SECONDS",
                     help="measured seconds of one training step on one GPU of that "
                     "machine at the one-GPU batch; it anchors the forecast's compute")
    run.add_argument("--input-cpu-seconds", type=_flags.seconds("--input-cpu-seconds"),
                     metavar="SECONDS",
                     help="CPU core-seconds the input pipeline spends on one sample; the "
                     "forecast shares the host's cores out between the GPUs (default: "
                     "no input pipeline)")
    run.add_argument("--no-cpu-merge", dest="cpu_merge", action="store_false",
                     help="split: merge the replicas' outputs on the first GPU, not on "
                     "the host (replicate's cpu_merge=False)")
    run.add_argument("--cpu-relocation", action="store_true",
                     help="split: keep the weights on the host (replicate's "
                     "cpu_relocation=True)")
    run.add_argument("--out", metavar="DIR",
                     help="directory to write forecast.csv (the frame) and forecast.png to")
    run.add_argument("--verbose", action="store_true",
                     help="show TensorFlow's start-up messages")
    run.set_defaults(run=_run_forecast)


def _add_devices_command(commands: argparse._SubParsersAction) -> None:
    devices = commands.add_parser(
        "devices",
        help="show every GPU and the processes using it (no TensorFlow needed)",
        description="One line per GPU (index, name, temperature, utilization, memory "
        "used / total, power) and one per process using it (PID, user, GPU memory, "
        "command), read through NVML.",
    )
    devices.add_argument("--json", action="store_true",
                         help="print a JSON list with one object per GPU instead")
    devices.add_argument("--watch", type=_flags.seconds("--watch"), metavar="SECONDS",
                         help="refresh every SECONDS until Ctrl-C (with --json: one list "
                         "per line)")
    devices.add_argument("--count", type=_flags.positive("--count"), metavar="N",
                         help="with --watch: stop after N refreshes")
    devices.add_argument("--shares", choices=("auto", "memory"),
                         help="show each GPU's share of a batch split over the GPUs "
                         "shown, as replicate(model, shares=...) splits it: auto by "
                         "NVML's CUDA cores x max SM clock (where replicate cannot time "
                         "the model), memory by free memory")
    devices.set_defaults(run=_run_devices)


def _run_devices(args: argparse.Namespace) -> int:
    # The device layer loads no TensorFlow, and neither does this command.
    from nbreplica.devices import nvml_status, snapshot
    from nbreplica.devices.console import as_json, render
    from nbreplica.devices.shares import shares_by_index

    if args.count is not None and args.watch is None:
        print(f"nbreplica devices: error: --count needs --watch. Received: --count {args.count}",
              file=sys.stderr)
        return EXIT_ERROR
    clear = args.watch is not None and not args.json and sys.stdout.isatty()
    shown = 0
    due = time.monotonic()
    try:
        while True:
            devices = snapshot()
            if not devices:
                if args.json:  # a script reading stdout still gets JSON: no GPU
                    print("[]", flush=True)
                print(f"nbreplica devices: no GPU to show: {nvml_status()}", file=sys.stderr)
                return EXIT_ERROR
            shares = None if args.shares is None else shares_by_index(devices, args.shares)
            if args.json:
                text = json.dumps(as_json(devices, shares), indent=None if args.watch else 2)
            else:
                text = render(devices, f"{socket.gethostname()}  "
                              f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {nvml_status()}",
                              shares)
            # In a terminal each refresh replaces the last; piped, they follow each other.
            print(("\x1b[H\x1b[J" if clear else "\n" if shown and not args.json else "") + text,
                  flush=True)
            shown += 1
            if args.watch is None or shown == args.count:
                return 0
            due += args.watch
            time.sleep(max(due - time.monotonic(), 0.0))
    except KeyboardInterrupt:  # how --watch is meant to end
        return 0
    except BrokenPipeError:  # the reader stopped reading (`| head`): so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run_sweep(args: argparse.Namespace) -> int:
    missing = _missing_gpus(args)
    if missing is not None:
        print(f"nbreplica sweep: error: {missing}", file=sys.stderr)
        return EXIT_ERROR
    _tensorflow.load(quiet=not args.verbose)
    # Imported only now: each of them imports TensorFlow, which must start quietly.
    from nbreplica.gpus.available import emulate_gpus
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
            target_ci=args.target_ci or None,
            budget=args.budget,
            name=args.name,
            results_path=args.results,
            efficiency_threshold=args.threshold,
            forecast=args.forecast,
            shares=args.shares,
            mlflow=args.mlflow,
        )
    except SweepInterrupted as stop:
        _report(stop.result, args.out)
        print(f"\n{stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NbreplicaError, ValueError, ImportError) as error:
        print(f"nbreplica sweep: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    _report(result, args.out)
    return 0


def _run_forecast(args: argparse.Namespace) -> int:
    # The catalogue loads no TensorFlow: a bad --hardware fails at once.
    from nbreplica.forecasting.catalogue import hardware_catalogue, resolve_hardware

    if args.list_hardware:
        from nbreplica.bench.forecast_text import catalogue_lines

        print("\n".join(catalogue_lines(hardware_catalogue())))
        return 0
    try:
        hardware = resolve_hardware(args.hardware) if args.hardware else None
        _start_tracing_devices(args.verbose)
        model = _forecast_model(args.model)
        from nbreplica.forecasting.api import forecast

        given = {"devices": args.devices, "hardware": hardware, "strategy": args.strategy,
                 "scaling": args.scaling, "step_time": args.step_time,
                 "input_cpu_seconds": args.input_cpu_seconds}
        result = forecast(model, args.batch_size, cpu_merge=args.cpu_merge,
                          cpu_relocation=args.cpu_relocation,
                          **{name: value for name, value in given.items() if value is not None})
    except (NbreplicaError, TypeError, ValueError) as error:
        print(f"nbreplica forecast: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    from nbreplica.bench.forecast_text import forecast_lines

    print("\n".join(forecast_lines(result)))
    if args.out:
        _write_forecast(result, args.out)
    return 0


def _start_tracing_devices(verbose: bool) -> None:
    """Start TensorFlow with the two devices a forecast traces its step over: on a
    machine without GPUs, and none emulated yet, two emulated ones."""
    tensorflow = _tensorflow.load(quiet=not verbose)
    from nbreplica.gpus import emulation
    from nbreplica.gpus.available import emulate_gpus

    if not emulation.emulated_count() and not tensorflow.config.list_physical_devices("GPU"):
        emulate_gpus(2)


def _forecast_model(name: str) -> keras.Model:
    """The model ``--model`` names: a built-in one, or what ``module:function`` returns."""
    from nbreplica.bench.models import BUILTIN_MODELS
    from nbreplica.cluster.job import import_function

    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name].model_fn()
    if ":" not in name:
        raise NbreplicaError(
            f"--model must be a built-in model ({', '.join(sorted(BUILTIN_MODELS))}) or "
            f"module:function. Received: --model={name!r}")
    return import_function(name, "--model must be a built-in model or")()


def _write_forecast(result: Forecast, out: str) -> None:
    """``forecast.csv`` (the frame) and ``forecast.png`` (the plot) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result.frame.to_csv(folder / "forecast.csv", index=False)
    figure = result.plot()
    figure.savefig(folder / "forecast.png", dpi=120, bbox_inches="tight")
    matplotlib.pyplot.close(figure)
    print(f"\nForecast files: {folder / 'forecast.csv'}, {folder / 'forecast.png'}")


def _missing_gpus(args: argparse.Namespace) -> str | None:
    """Why the sweep cannot run on this machine, found before TensorFlow takes seconds
    to start: its strategies need this process's devices, and NVML shows no GPU, none
    is emulated and ``--emulate`` was not given; ``None`` when it can run."""
    from nbreplica.devices import nvml_status, snapshot  # no TensorFlow

    if args.emulate is not None or set(args.strategy) <= {MULTIWORKER} or snapshot():
        return None
    return (f"this machine has no GPU to sweep over ({nvml_status()}) and none is "
            f"emulated: add --emulate N to emulate N GPUs with logical CPU devices, e.g. "
            f"--emulate {max(args.devices)}. Received: no --emulate")


def _report(result: SweepResult, out: str) -> None:
    from nbreplica.bench.report import device_notes
    from nbreplica.devices import snapshot

    simulated = any(device.simulated for device in snapshot())
    print("\n".join([*device_notes(result, simulated), result.table()]))
    if result.runs.empty:
        return
    paths = result.save(out)
    print(f"\nReport: {paths['report']}")
    print(f"Files:  {', '.join(str(path) for key, path in paths.items() if key != 'report')}")
    print(f"Stored: {result.results_path} (sweep {result.name!r}, id {result.sweep_id})")

"""IPython magics: ``%%replicate``, ``%nbreplica_devices`` and ``%nbreplica_report``.

Load them with ``%load_ext nbreplica``. Loading them and showing the GPU picker start
no TensorFlow: what needs it is imported inside the magic that uses it, after
TensorFlow has started quietly.
"""

from __future__ import annotations

from argparse import ArgumentTypeError, Namespace
from collections.abc import Callable
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from nbreplica import _flags as flags
from nbreplica import _tensorflow
from nbreplica._errors import ResultsStoreError
from nbreplica.bench import defaults
from nbreplica.strategy.names import IN_PROCESS, MULTIWORKER
from nbreplica.cluster.launcher import BACKENDS
from nbreplica.cluster.ray_launcher import RayBackend
from nbreplica.notebook.picker import GpuPicker

if TYPE_CHECKING:
    from nbreplica.forecasting.hardware import Hardware
    from nbreplica.gpus.available import Accelerator
    from nbreplica.bench.result import SweepResult
    from nbreplica.notebook.cell_parallel import CellRun
    from nbreplica.tracking.gpu_monitor import GpuMonitor

#: ``--workers without a number: with ``--sweep``, whose counts are worker counts.
SWEPT_WORKERS = 0


def _hardware(name: str) -> Hardware:
    """``--forecast HARDWARE``: a machine of the forecast's catalogue."""
    from nbreplica.forecasting.catalogue import resolve_hardware

    try:
        return resolve_hardware(name)
    except ValueError as error:
        raise ArgumentTypeError(str(error)) from None


@magics_class
class ReplicateMagics(Magics):
    """The nbreplica magics. :attr:`last_run` and :attr:`last_sweep` keep what the
    latest ``%%replicate`` cell measured."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.last_run: CellRun | None = None
        self.last_sweep: SweepResult | None = None
        self._picker: GpuPicker | None = None
        self._running = False

    # IPython's usage line puts one "%" before the name: a cell magic takes two.
    @magic_arguments("%replicate")
    @argument("--gpus", type=flags.whole_numbers("--gpus", 0), metavar="IDS",
              help="the GPU indices to use, comma-separated, e.g. 0,1,2,3 (default: "
                   "the GPU picker's selection, else every device)")
    @argument("-n", type=flags.positive("-n"), metavar="N",
              help="use N devices: the first N of the picker's selection, else of "
                   "every device")
    @argument("--strategy", choices=IN_PROCESS, default="split",
              help="split: replicate the cell's models (default); mirrored: run the "
                   "cell under tf.distribute.MirroredStrategy")
    @argument("--shares", type=flags.shares, metavar="SHARES",
              help="with --strategy split: how much of each batch each device gets: "
                   "auto (measured speed, else NVML's description), memory (free "
                   "memory), even (default), or proportions, one per device, e.g. "
                   "0.5,0.25,0.25 (with --sweep, a point on fewer devices uses the "
                   "first ones)")
    @argument("--sweep", type=flags.whole_numbers("--sweep", 1), metavar="COUNTS",
              help="re-run the cell on each device count, e.g. 1,2,4,8 (1 is always "
                   "added: the baseline), store every run and show the speedup report")
    @argument("--repeats", type=flags.positive("--repeats"), metavar="N",
              help="with --sweep: runs per device count, to which an adaptive sweep "
                   f"adds (default: {defaults.REPEATS})")
    @argument("--target-ci", type=flags.target_ci, metavar="WIDTH",
              help="with --sweep: add repeats until every speedup interval is at most "
                   "WIDTH wide, relative to the speedup; 0 runs exactly --repeats "
                   f"(default: {defaults.TARGET_CI})")
    @argument("--budget", type=flags.seconds("--budget"), metavar="SECONDS",
              help="with --sweep: the time an adaptive sweep may take (default: "
                   f"{defaults.BUDGET_S:g})")
    @argument("--name", help="with --sweep: the sweep's name in the results store "
                             "(default: '<model>-strong-b<batch size>')")
    @argument("--monitor", action="store_true",
              help="sample the devices (NVML) while the cell runs: peak memory and "
                   "mean utilization per device")
    @argument("--log-dir", metavar="DIR",
              help="with --monitor: also write the GPU metrics of every fit in the cell, "
                   "per step and epoch, as TensorBoard event files to DIR/gpus "
                   "(nbreplica.GpuMonitor)")
    @argument("--mlflow", action="store_true",
              help="with --sweep: log the sweep to MLflow (a parent run, one child run per "
                   "point, the report as artifacts); with --monitor: log the GPU metrics of "
                   "every fit in the cell to the active MLflow run (nbreplica.GpuMonitor). "
                   "Needs nbreplica[mlflow]")
    @argument("--workers", type=flags.positive("--workers"), metavar="N", nargs="?",
              const=SWEPT_WORKERS,
              help="run the (self-contained) cell in N fresh worker processes under "
                   "MultiWorkerMirroredStrategy; the chief's models, histories and "
                   "picklable values come back. With --sweep, give no N: the counts "
                   "of --sweep are worker counts")
    @argument("--backend", choices=BACKENDS, default="local",
              help="with --workers N: where the workers run (default: local, processes "
                   "of this machine; ray: Ray actors on the Ray cluster this kernel is "
                   "connected to, or on a Ray started here; needs nbreplica[ray])")
    @argument("--cpus-per-worker", type=flags.amount("--cpus-per-worker"), metavar="N",
              help="with --backend ray: the CPUs Ray reserves for each worker (default: 1)")
    @argument("--gpus-per-worker", type=flags.amount("--gpus-per-worker"), metavar="N",
              help="with --backend ray: the GPUs Ray reserves for each worker, which then "
                   "sees only those (default: 0)")
    @argument("--check", action="store_true",
              help="after the cell, check that each model its fit calls trained trains "
                   "replicated as on one device (nbreplica.check_fidelity) and print "
                   "the verdicts")
    @argument("--forecast", type=_hardware, metavar="HARDWARE",
              help="after the cell, forecast how the model it trained would scale on "
                   "HARDWARE, a machine of nbreplica.hardware_catalogue() (e.g. "
                   "dgx-a100), and show the forecast and its plot")
    @argument("--quiet", action="store_true",
              help="show no summary (with --sweep: no progress bar and no report; "
                   "%%nbreplica_report shows it later)")
    @cell_magic
    def replicate(self, line: str, cell: str) -> None:
        """Run the cell data-parallel over several GPUs (or emulated GPUs).

        The cell runs as a normal cell: its variables land in the namespace, its
        output shows as usual, and an error shows the cell's own traceback (the
        ``%%replicate`` cell then fails too). A compact summary follows: the devices,
        wall time, training throughput in samples/s when the cell trained (its
        first train step, with tracing, left out), and with ``--monitor`` each
        device's peak memory and mean utilization.

        Devices: ``--gpus 0,2`` exactly those; ``-n 4`` the first 4 of the GPU
        picker's selection (``%nbreplica_devices`` / ``nbreplica.use_devices``),
        else of every device; neither: the selection, else every device. While the
        cell runs, ``nbreplica.selected_devices()`` returns the cell's devices, so
        ``nbreplica.replicate(model)`` inside it uses them too. Afterwards the
        selection is what it was before.

        Rules of ``--strategy split`` (the default):

        - Every ``fit``, ``evaluate``, ``predict``, ``train_on_batch``,
          ``test_on_batch`` and ``predict_on_batch`` call on a built Keras model
          runs through ``nbreplica.replicate(model)`` over the cell's devices,
          whether the model was built in this cell or before it. Other calls
          (``model(x)``, custom training loops) run on one device as usual.
        - The replicated model is compiled with the model's own compile arguments
          and shares its optimizer object, so training in the cell trains the model
          itself and optimizer state (step count, moments) carries on across cells.
          ``jit_compile`` is not used (XLA would ignore the per-device placement).
        - ``fit``/``evaluate`` on a model that is not compiled raise Keras's usual
          error; ``predict`` works without compiling.
        - A model that is not built yet (a subclassed model never called) runs its
          call on one device, with a warning; build it first to split it.
        - Callbacks see the replicated model: use ``nbreplica.TemplateCheckpoint``
          to checkpoint the model itself. Save the model itself, not the replicated
          one: ``model.save("my_model.keras")`` loads anywhere.
        - Within one cell, the calls on one model share one replicated model; each
          cell makes its own (its first step traces the training step again).

        ``--shares`` (with ``--strategy split``) splits each batch unevenly, as
        ``nbreplica.replicate(model, shares=...)`` does: ``auto`` (each device's
        measured speed, else NVML's description of each GPU), ``memory`` (each GPU's
        free memory) or proportions, one per device of the cell (``0.5,0.25,0.25``).
        The summary says how each batch was split.

        Rules of ``--strategy mirrored``:

        - The cell runs inside the scope of a ``tf.distribute.MirroredStrategy``
          over the cell's devices, so models built (and compiled) in the cell are
          mirrored: each batch is split across the devices by TensorFlow.
        - Models must be built inside the cell, or in an earlier mirrored cell over
          the same devices (one strategy per device set is kept for the session):
          calling ``fit``/``evaluate``/``predict`` on a model built elsewhere raises
          a ``ValueError`` saying so.
        - Gradients are reduced with ``tf.distribute.ReductionToOneDevice`` (as in
          ``nbreplica.sweep``), and XLA is turned off for the cell's models: the
          collective all-reduce both would otherwise use aborts the process once
          strategies over different device counts exist.

        Rules of ``--check`` (with ``--strategy split`` only):

        - The cell runs as above; then each model a ``fit`` call in it trained is
          checked with ``nbreplica.check_fidelity`` over the cell's devices (at least
          two), from its weights after the cell, on the data of its first ``fit``
          call (``x``, ``y``, ``batch_size``, ``sample_weight``, ``class_weight``,
          ``validation_split``), and one verdict per model is printed. The checks
          train copies: the models themselves are not changed.

        Rules of ``--workers N`` (``nbreplica.cluster.launch``):

        - The cell runs in N fresh worker processes, inside the scope of a
          ``tf.distribute.MultiWorkerMirroredStrategy``, so its models train
          data-parallel across the workers. The workers do not see the notebook's
          namespace: the cell must be self-contained (imports, data, model).
        - The chief's (worker 0's) output is shown as it is written. Afterwards the
          values the cell defined in the chief come back into the namespace:
          trained Keras models, ``History`` objects and everything else that can be
          pickled; the summary names each value that did not come back, and why.
        - Only the chief writes models (``model.save``, ``ModelCheckpoint``). A
          failing worker fails the cell with its last output lines; Ctrl-C
          ("Interrupt kernel") stops every worker. ``--gpus``, ``-n``,
          ``--strategy`` and ``--monitor`` do not combine with it.
        - ``--sweep 1,2 --workers`` (no N) sweeps over worker counts: per repeat,
          the cell runs once in this process on the first device (the baseline),
          then in 1, 2, ... fresh workers; each point's throughput is the chief's.

        Rules of ``--monitor`` with ``--log-dir DIR`` or ``--mlflow``
        (``nbreplica.GpuMonitor``):

        - Every ``fit`` in the cell gets a ``GpuMonitor`` of the cell's GPUs (their NVML
          indices): their utilization, memory, power and temperature, averaged per
          training step and per epoch, go to TensorBoard event files in ``DIR/gpus``
          and/or the active MLflow run (with none active, one run per ``fit``), named
          ``system/gpu_<index>_<metric>``. The summary still shows peak memory and mean
          utilization. Neither combines with ``--workers N``; with ``--sweep``,
          ``--mlflow`` logs the sweep instead, and ``--log-dir`` is refused.

        Rules of ``--forecast HARDWARE`` (``nbreplica.forecast``):

        - The cell runs as above; then the first model one of its ``fit`` calls
          trained on arrays or a batched ``tf.data.Dataset`` is forecast on HARDWARE
          (a name of ``nbreplica.hardware_catalogue()``): at the cell's batch size,
          split over 1, 2, 4, ... of the machine's GPUs (strong scaling), with the
          cell's ``--strategy``. Its step is traced over two of the kernel's devices,
          not run. The forecast's explanation (where the time goes, what bounds it,
          what to change) and its plot follow the summary; everything in them is a
          forecast for real GPUs, not a measurement of this machine.
        - A cell without such a ``fit`` call, or a model whose step cannot be traced,
          gets a line saying why instead; the cell itself does not fail.
        - It does not combine with ``--workers N``. With ``--sweep``, the model of the
          sweep's last run is forecast, and the sweep's report
          shows the forecast's speedup as a dashed "forecast on HARDWARE" line beside
          the measured one, and its table under the measured table.

        With one device (``-n 1``, ``--gpus 3``, the 1-device sweep point), the
        cell runs unchanged under ``tf.device`` of that device, whatever the
        strategy.

        Sweeps: ``--sweep 1,2,4,8`` runs the cell once per device count and
        ``--repeats`` times, counts in increasing order within each repeat, each on
        the first devices of those chosen above; then, as ``nbreplica.sweep``
        does, it adds repeats of the counts whose speedup interval is wider than
        ``--target-ci`` (relative to the speedup; 0 adds none) until all are within
        it or ``--budget`` seconds would be exceeded (the defaults are in the
        options above). The cell must
        train a model with ``fit`` on arrays or a batched ``tf.data.Dataset`` (so
        that samples can be counted) at the same batch size on every count (strong
        scaling). Every run is stored in the results file (``$NBREPLICA_RESULTS``,
        else ``~/.nbreplica/results.sqlite``) as it finishes; the speedup report
        follows the sweep. Only the last run's output is shown, once the sweep ends
        (a failing run's output is shown too), and the namespace is the last run's. An error or
        an interrupt (Ctrl-C, "Interrupt kernel") stops the sweep: the runs measured
        so far stay stored and are reported, and the device selection and Keras are
        restored. With ``--mlflow``, the sweep (interrupted too) is then logged to
        MLflow as ``nbreplica.sweep(..., mlflow=True)`` logs it.
        """
        args = _arguments(self.replicate, "%%replicate", line)
        if not cell.strip():
            raise UsageError("%%replicate needs a cell body to run. Received: an empty cell")
        if self._running:
            raise UsageError(
                "%%replicate cells cannot be nested. Received: %%replicate inside the "
                "body of another %%replicate cell"
            )
        _tensorflow.load()
        _check_backend(args)
        _refuse_check_combinations(args)
        _check_tracking(args)
        if args.workers is not None:
            _check_worker_options(args)
            if args.sweep is None:
                self._run_workers(args, cell)
                return
        from nbreplica.notebook.cell_parallel import OuterCell

        devices = _chosen_devices(args)
        _check_shares(args, devices)
        outer = OuterCell(self.shell)
        self._running = True
        try:
            error = (self._sweep(args, cell, devices) if args.sweep is not None
                     else self._run(args, cell, devices))
        finally:
            self._running = False
        if error is not None:
            outer.fail(error)

    def _run(self, args: Namespace, cell: str, devices: list[Accelerator]) -> BaseException | None:
        from nbreplica.notebook.cell_parallel import run_parallel
        from nbreplica.notebook.check_cell import run_checked
        from nbreplica.notebook.summary import CellSummary

        _refuse_sweep_options(args)
        run_cell = run_checked if args.check else run_parallel
        run = run_cell(self.shell, cell, devices, args.strategy, monitor=args.monitor,
                       shares=args.shares, callbacks=_gpu_monitors(args, devices))
        self.last_run = run
        if not args.quiet and run.ran:
            display(CellSummary(run))
        if args.forecast is not None and run.error is None:
            from nbreplica.notebook.forecast_cell import forecast_of_cell

            shown = forecast_of_cell(run, args.forecast, args.strategy)
            print(shown) if isinstance(shown, str) else display(shown)
        return run.error

    def _run_workers(self, args: Namespace, cell: str) -> None:
        from nbreplica.notebook.summary import WorkersSummary
        from nbreplica.notebook.worker_cell import run_in_workers

        run = run_in_workers(self.shell, cell, args.workers, _backend(args))
        if not args.quiet:
            display(WorkersSummary(run))

    def _sweep(self, args: Namespace, cell: str,
               devices: list[Accelerator]) -> BaseException | None:
        from nbreplica.bench.progress import make_progress
        from nbreplica.bench.schedule import Precision
        from nbreplica.notebook.sweep_cell import sweep_cell

        counts = sorted({1, *args.sweep})
        strategy = MULTIWORKER if args.workers is not None else args.strategy
        if strategy != MULTIWORKER and counts[-1] > len(devices):
            raise UsageError(
                f"--sweep asks for {counts[-1]} devices, but the cell may use "
                f"{len(devices)} (GPUs {', '.join(str(d.index) for d in devices)}). "
                f"Received: --sweep {','.join(map(str, args.sweep))}"
            )
        precision = Precision.of(
            args.repeats or defaults.REPEATS,
            defaults.TARGET_CI if args.target_ci is None else args.target_ci or None,
            args.budget or defaults.BUDGET_S)
        outcome = sweep_cell(self.shell, cell, devices, counts, strategy, precision,
                             name=args.name, monitor=args.monitor,
                             progress=make_progress(False if args.quiet else None),
                             forecast_on=args.forecast, shares=args.shares)
        if outcome.result is not None:
            self.last_sweep = outcome.result
            if args.mlflow:
                from nbreplica.bench.to_mlflow import log_sweep

                log_sweep(outcome.result, "%%replicate --sweep --mlflow")
            if not args.quiet:
                _show_sweep(outcome.result)
        return outcome.error

    @line_magic
    def nbreplica_devices(self, line: str) -> None:
        """Show the GPU picker: one row per GPU with live memory and utilization; the
        ticked GPUs become the default devices of ``%%replicate`` and
        ``nbreplica.replicate``. Showing it again closes the previous one."""
        if line.strip():
            raise UsageError(f"%nbreplica_devices takes no arguments. Received: {line.strip()!r}")
        self.close_picker()
        self._picker = GpuPicker()
        display(self._picker)

    @magic_arguments()
    @argument("name", nargs="?",
              help="the sweep's name or id (default: the latest stored sweep)")
    @line_magic
    def nbreplica_report(self, line: str) -> None:
        """Show the speedup report of the latest sweep, or of the sweep called NAME,
        from the results file (``$NBREPLICA_RESULTS``, else
        ``~/.nbreplica/results.sqlite``): its summary table, recommended device
        counts and scaling figure."""
        args = _arguments(self.nbreplica_report, "%nbreplica_report", line)
        _tensorflow.load()
        from nbreplica.bench.result import SweepResult

        try:
            result = SweepResult.load(args.name)
        except (FileNotFoundError, LookupError, ResultsStoreError) as error:
            raise UsageError(str(error)) from None
        if self.last_sweep is not None and self.last_sweep.sweep_id == result.sweep_id:
            result = self.last_sweep  # knows how many points were planned
        _show_sweep(result)

    def close_picker(self) -> None:
        """Close the picker ``%nbreplica_devices`` showed (stops its refresh thread)."""
        if self._picker is not None:
            self._picker.close()
            self._picker = None


def _arguments(magic: Callable[..., None], name: str, line: str) -> Namespace:
    """``line`` parsed as ``magic``'s arguments; a line that cannot be split into
    arguments (an unclosed quotation mark) raises a ``UsageError``."""
    try:
        return parse_argstring(magic, line)
    except ValueError as error:  # shlex's, e.g. "No closing quotation"
        raise UsageError(
            f"{name} cannot split its line into arguments ({error}): close every quotation "
            f"mark. Received: {name} {line}"
        ) from None


def _show_sweep(result: SweepResult) -> None:
    """A sweep's report: its summary and recommendations, then its scaling figure."""
    display(result, result.plot())


def _chosen_devices(args: Namespace) -> list[Accelerator]:
    from nbreplica.gpus.available import pick_devices
    from nbreplica.gpus.replicas import chosen_devices

    if args.gpus is not None and args.n is not None:
        raise UsageError(
            "--gpus and -n cannot be combined: name the GPUs, or how many to use. "
            f"Received: --gpus {','.join(map(str, args.gpus))} -n {args.n}"
        )
    try:
        if args.gpus is not None:
            return pick_devices(args.gpus, f"--gpus {','.join(map(str, args.gpus))}")
        return chosen_devices(args.n, asked_by="-n")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_shares(args: Namespace, devices: list[Accelerator]) -> None:
    """``--shares`` splits ``--strategy split`` batches: proportions name each of the
    cell's devices."""
    if args.shares is None:
        return
    shown = args.shares if isinstance(args.shares, str) else ",".join(
        f"{share:g}" for share in args.shares)
    if args.strategy != "split":
        raise UsageError(
            "--shares splits the batches of --strategy split; MirroredStrategy splits "
            f"evenly. Received: --shares {shown} with --strategy {args.strategy}")
    if not isinstance(args.shares, str) and len(args.shares) != len(devices):
        raise UsageError(
            f"--shares needs one proportion per device of the cell: {len(devices)} devices "
            f"(GPUs {', '.join(str(d.index) for d in devices)}), {len(args.shares)} shares. "
            f"Received: --shares {shown}")


def _check_worker_options(args: Namespace) -> None:
    """``--workers N`` alone, or ``--workers`` (no N) with ``--sweep``; no device or
    strategy options, which the workers do not use."""
    swept = args.sweep is not None
    if swept != (args.workers == SWEPT_WORKERS):
        raise UsageError(
            "--workers takes N alone (--workers 2), or no N with --sweep, whose counts are "
            "then worker counts (--sweep 1,2 --workers). Received: "
            + " ".join(["--workers", *([str(args.workers)] if args.workers else []),
                        "with" if swept else "without", "--sweep"])
        )
    for flag, given in (("--gpus", args.gpus is not None), ("-n", args.n is not None),
                        ("--forecast", args.forecast is not None and not swept),
                        ("--strategy", args.strategy != "split"), ("--monitor", args.monitor),
                        ("--shares", args.shares is not None),
                        ("--mlflow", args.mlflow and not swept),
                        ("--repeats", args.repeats is not None and not swept),
                        ("--name", args.name is not None and not swept)):
        if given:
            raise UsageError(
                f"{flag} does not combine with --workers: the workers train under "
                f"MultiWorkerMirroredStrategy on their own devices. Received: {flag} "
                f"with --workers"
            )


def _check_backend(args: Namespace) -> None:
    """``--backend`` other than local only with ``--workers N``: sweeps over workers
    measure workers on this machine. Ray resources only with ``--backend ray``."""
    for flag, value in (("--cpus-per-worker", args.cpus_per_worker),
                        ("--gpus-per-worker", args.gpus_per_worker)):
        if value is not None and args.backend != "ray":
            raise UsageError(f"{flag} sets what Ray reserves: it needs --backend ray. "
                             f"Received: {flag} {value:g} with --backend {args.backend}")
    if args.backend == "local" or (args.workers is not None and args.sweep is None):
        return
    usage = "--sweep" if args.sweep is not None else "no --workers N"
    raise UsageError(
        f"--backend {args.backend} needs --workers N and no --sweep: worker sweeps measure "
        f"local workers, which share this machine. Received: --backend {args.backend} "
        f"with {usage}"
    )


def _backend(args: Namespace) -> str | RayBackend:
    """Where ``--workers N`` runs: ``--backend``, with the Ray resources asked for."""
    if args.cpus_per_worker is None and args.gpus_per_worker is None:
        return args.backend
    cpus = 1 if args.cpus_per_worker is None else args.cpus_per_worker
    gpus = args.gpus_per_worker or 0
    if not cpus and not gpus:
        raise UsageError(
            "A worker needs CPUs or GPUs: --cpus-per-worker or --gpus-per-worker must be "
            f"> 0. Received: --cpus-per-worker {cpus:g} --gpus-per-worker {gpus:g}")
    return RayBackend(cpus_per_worker=cpus, gpus_per_worker=gpus)


def _refuse_check_combinations(args: Namespace) -> None:
    """``--check`` compares replicated training (``--strategy split``) with one device."""
    for flag, given in (("--sweep", args.sweep is not None),
                        ("--workers", args.workers is not None),
                        (f"--strategy {args.strategy}", args.strategy != "split")):
        if args.check and given:
            raise UsageError(
                "--check compares the cell's models replicated (--strategy split) with "
                f"one device: it does not combine with {flag}. Received: --check {flag}")


def _check_tracking(args: Namespace) -> None:
    """``--log-dir`` with ``--monitor`` and no ``--sweep``; ``--mlflow`` with either, and
    MLflow installed."""
    if args.log_dir is not None and (not args.monitor or args.sweep is not None):
        raise UsageError(
            "--log-dir writes the GPU metrics of one cell's fit calls: it needs --monitor "
            f"and no --sweep. Received: --log-dir {args.log_dir} "
            + ("with --sweep" if args.sweep is not None else "without --monitor"))
    if args.mlflow and not args.monitor and args.sweep is None:
        raise UsageError(
            "--mlflow logs a --sweep, or with --monitor the cell's GPU metrics: add one of "
            "them. Received: --mlflow without --sweep or --monitor")
    if args.mlflow:
        from nbreplica.tracking.mlflow_runs import require_mlflow

        try:
            require_mlflow("%%replicate --mlflow")
        except ImportError as error:
            raise UsageError(str(error)) from None


def _gpu_monitors(args: Namespace, devices: list[Accelerator],
                  ) -> Callable[[], list[GpuMonitor]] | None:
    """With ``--monitor`` and ``--log-dir`` or ``--mlflow``: what makes a
    :class:`~nbreplica.GpuMonitor` of the cell's GPUs for each of its fit calls."""
    if not args.monitor or (args.log_dir is None and not args.mlflow):
        return None
    from nbreplica.tracking.gpu_monitor import GpuMonitor
    from nbreplica.devices.cuda_visible import nvml_indices

    gpus = nvml_indices(devices)
    return lambda: [GpuMonitor(args.log_dir, mlflow=args.mlflow, gpus=gpus)]


def _refuse_sweep_options(args: Namespace) -> None:
    for flag, value in (("--repeats", args.repeats), ("--name", args.name),
                        ("--target-ci", args.target_ci), ("--budget", args.budget)):
        if value is not None:
            raise UsageError(
                f"{flag} only applies to sweeps: add --sweep 1,2,4,8 (or drop {flag}). "
                f"Received: {flag} {value}"
            )


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the nbreplica magics (``%load_ext nbreplica``)."""
    shell.register_magics(ReplicateMagics(shell))


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove the nbreplica magics and close the picker they showed
    (``%unload_ext nbreplica``)."""
    magics = shell.magics_manager.registry.pop(ReplicateMagics.__name__, None)
    if magics is None:
        return
    magics.close_picker()
    for kind, names in magics.magics.items():
        for name in names:
            shell.magics_manager.magics[kind].pop(name, None)

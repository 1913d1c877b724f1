"""A worker process: join the cluster in ``TF_CONFIG``, run the job in the strategy's
scope, and write what it returned.

``nbreplica worker JOB`` and ``python -m nbreplica.cluster JOB`` run this; the local
launcher starts its workers the same way, so a cluster manager (Slurm, Kubernetes,
ssh) that sets ``TF_CONFIG`` on each machine runs exactly what the launcher runs. The
command is a supervisor (:mod:`nbreplica.cluster.supervisor`): the worker runs in its
child process, which it ends on SIGTERM, at the join timeout and when the launcher
is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbreplica import _flags, _tensorflow
from nbreplica._errors import NbreplicaError
from nbreplica.cluster import tf_config
from nbreplica.cluster.current import WorkerContext, context, enter
from nbreplica.cluster.job import Job, check_job, read_job
from nbreplica.cluster.result_file import check_folder, write_result
from nbreplica.cluster.supervisor import (
    EXIT_ERROR,
    GRACE_PERIOD,
    Terminated,
    raise_terminated,
    supervise,
)

#: What a worker does, for its command line's help.
DESCRIPTION = (
    "Run a function as one worker of the MultiWorkerMirroredStrategy cluster that the "
    "TF_CONFIG variable describes: start it on every machine (Slurm, Kubernetes, ssh), "
    "each with its own TF_CONFIG. The function runs inside the strategy's scope. The "
    f"worker ends on SIGTERM, within {GRACE_PERIOD:g} s."
)
#: Seconds a worker has to start and join its cluster, unless ``--timeout`` says.
DEFAULT_TIMEOUT = 600.0
#: What TensorFlow says when a collective operation ran past its timeout, and when
#: the worker's own port is taken.
_TIMED_OUT = "Collective has timed out"
_PORT_TAKEN = "Could not start gRPC server"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbreplica.cluster``: run one worker; returns the exit status."""
    command = argparse.ArgumentParser(prog="python -m nbreplica.cluster",
                                      description=DESCRIPTION)
    add_arguments(command)
    return run_from_command_line(command.parse_args(argv), command.prog)


def run_from_command_line(args: argparse.Namespace, prog: str) -> int:
    """Run the worker ``args`` describe under a supervisor, or, in the supervisor's
    child (``--joined-fd``), the worker itself; returns the exit status (1: an error,
    reported on standard error; 128 + N: stopped by signal N)."""
    if args.joined_fd is None:
        return supervise(prog, _worker_command(args, prog), launcher_fd=args.launcher_fd,
                         timeout=args.timeout or None)
    try:
        run(args.job, result=args.result, ready=args.ready, step_timeout=args.step_timeout,
            joined_fd=args.joined_fd)
    except NbreplicaError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated:
        _end(128 + signal.SIGTERM)  # at once: TensorFlow's clean-up could wait for peers
    return 0


def _worker_command(args: argparse.Namespace, prog: str) -> list[str]:
    """The supervisor's child: this command again, to run the worker itself."""
    entry = ["nbreplica", "worker"] if prog.startswith("nbreplica ") else ["nbreplica.cluster"]
    command = [sys.executable, "-m", *entry, args.job]
    for flag, value in (("--result", args.result), ("--ready", args.ready),
                        ("--step-timeout", args.step_timeout)):
        if value is not None:
            command += [flag, str(value)]
    return command


def _end(status: int) -> None:
    """End the process now, with what it wrote flushed, and nothing else run."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream: nothing more can be shown
    os._exit(status)


def add_arguments(command: argparse.ArgumentParser) -> None:
    """Add the worker's arguments to ``command``."""
    command.add_argument(
        "job", help="a file written by nbreplica.cluster.write_job, or an importable "
        "function as module:function")
    command.add_argument(
        "--result", metavar="PATH",
        help="write the function's return value here (cloudpickle). Only the chief "
        "writes it, unless PATH contains {index}: then every worker writes its own. The "
        "folder must exist; a value that cannot be written there goes to the temporary "
        "folder, and the error says where")
    command.add_argument(
        "--timeout", metavar="SECONDS", default=DEFAULT_TIMEOUT,
        type=_flags.real("--timeout", "a number of seconds >= 0 (0: no limit)",
                         lambda value: value >= 0),
        help="seconds this worker has to start and join its cluster, after which it stops "
        f"with an error (default: {DEFAULT_TIMEOUT:g}; 0: no limit)")
    command.add_argument(
        "--step-timeout", metavar="SECONDS", type=_flags.seconds("--step-timeout"),
        help="seconds each collective operation (a step's gradient all-reduce) may take "
        "before the worker stops with an error: bounds a step that waits for a worker that "
        "hangs. TensorFlow bounds neither the first one, which waits until every worker "
        "takes part, nor joining (see --timeout); and it runs each operation with a timer "
        "thread: a setting to find a hang with (default: no limit)")
    command.add_argument("--ready", metavar="PATH", help=argparse.SUPPRESS)
    command.add_argument("--launcher-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    command.add_argument("--joined-fd", type=int, metavar="FD", help=argparse.SUPPRESS)


def run(job: str, result: str | None = None, ready: str | None = None, *,
        step_timeout: float | None = None, joined_fd: int | None = None) -> None:
    """Join the cluster, run ``job`` under its strategy, write its result.

    The job file and the result's folder are checked before the worker joins. Once the
    cluster formed, ``ready`` (with ``{index}`` in it) is created, a byte is written to
    ``joined_fd`` (the supervisor's), and SIGTERM raises :class:`Terminated` (taken
    back from TensorFlow's handler).
    """
    task = tf_config.read_task()
    target = (Path(result.format(index=task.index))
              if result and (task.is_chief or "{index}" in result) else None)
    check_job(job)
    if target is not None:
        check_folder(target, result)
    joined = join_cluster(task, step_timeout)
    signal.signal(signal.SIGTERM, raise_terminated)
    if joined_fd is not None:
        os.write(joined_fd, b"j")
        os.close(joined_fd)
    if ready:
        Path(ready.format(index=joined.index)).touch()
    value = run_job(read_job(job), step_timeout)
    if target is not None:
        write_result(target, value, result)
    sys.stdout.flush()


def join_cluster(task: tf_config.Task | None = None,
                 step_timeout: float | None = None) -> WorkerContext:
    """Join the cluster ``TF_CONFIG`` describes (``task``: this worker's, read from it
    already); returns this worker's context. ``step_timeout`` bounds every collective
    operation.

    The strategy is created before anything else touches TensorFlow (collective
    operations must be configured before the runtime starts); creating it waits until
    every worker of the cluster has joined. Then the Keras correction and chief-only
    saving are put in place.

    Raises:
        NbreplicaError: this worker's port is taken.
    """
    task = task or tf_config.read_task()
    tf = _tensorflow.load()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=step_timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except tf.errors.OpError as error:
        if _PORT_TAKEN not in str(error):
            raise
        raise NbreplicaError(
            f"this worker cannot listen at {task.address}, its address in TF_CONFIG: the "
            f"port is in use ({_PORT_TAKEN}). Give it a free port in TF_CONFIG, or end "
            f"the process that holds it. Received: TF_CONFIG task {task.index} at "
            f"{task.address}"
        ) from None

    from nbreplica._keras_compat import chief_saving, multiworker_fit  # they import Keras

    multiworker_fit.apply()
    chief_saving.save_on_chief_only(task.is_chief)
    joined = WorkerContext(index=task.index, num_workers=task.num_workers,
                           is_chief=task.is_chief, strategy=strategy)
    enter(joined)
    return joined


def run_job(job: Job, step_timeout: float | None = None) -> Any:
    """Run ``job`` inside the strategy of the cluster this worker joined.

    Raises:
        NbreplicaError: the function called ``sys.exit``, or (``step_timeout``) a
            collective operation timed out.
    """
    index = context().index
    with context().strategy.scope():
        try:
            return job.run()
        except SystemExit as exit_call:
            raise NbreplicaError(
                f"the function called sys.exit({exit_call.code!r}) in worker {index}: a "
                "worker's function must return its result, or raise to fail. Received: "
                f"fn={job.fn!r}"
            ) from None
        except Exception as error:
            if step_timeout is None or _TIMED_OUT not in str(error):
                raise
            raise NbreplicaError(
                f"a collective operation of worker {index} did not complete within "
                f"{step_timeout:g} s: another worker hangs, has ended, or runs other steps. "
                f"Received: --step-timeout {step_timeout:g}"
            ) from error

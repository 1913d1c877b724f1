"""A worker process: join the cluster in ``TF_CONFIG``, run the job in the strategy's
scope, and write what it returned.

``nbreplica worker JOB`` and ``python -m nbreplica.cluster JOB`` run this; the local
launcher starts its workers the same way, so a cluster manager (Slurm, Kubernetes,
ssh) that sets ``TF_CONFIG`` on each machine runs exactly what the launcher runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbreplica import _tensorflow
from nbreplica._errors import NbreplicaError
from nbreplica.cluster import tf_config
from nbreplica.cluster.current import WorkerContext, context, enter
from nbreplica.cluster.job import Job, read_job, write_value

#: What a worker does, for its command line's help.
DESCRIPTION = (
    "Run a function as one worker of the MultiWorkerMirroredStrategy cluster that the "
    "TF_CONFIG variable describes: start it on every machine (Slurm, Kubernetes, ssh), "
    "each with its own TF_CONFIG. The function runs inside the strategy's scope."
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbreplica.cluster``: run one worker; returns the exit status."""
    command = argparse.ArgumentParser(prog="python -m nbreplica.cluster",
                                      description=DESCRIPTION)
    add_arguments(command)
    return run_from_command_line(command.parse_args(argv), command.prog)


def run_from_command_line(args: argparse.Namespace, prog: str) -> int:
    """Run the worker ``args`` describe; returns the exit status (1: a bad job or
    ``TF_CONFIG``, reported on standard error)."""
    try:
        run(args.job, result=args.result, ready=args.ready)
    except NbreplicaError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    return 0


def add_arguments(command: argparse.ArgumentParser) -> None:
    """Add the worker's arguments to ``command``."""
    command.add_argument(
        "job", help="a file written by nbreplica.cluster.write_job, or an importable "
        "function as module:function")
    command.add_argument(
        "--result", metavar="PATH",
        help="write the function's return value here (cloudpickle). Only the chief "
        "writes it, unless PATH contains {index}: then every worker writes its own")
    command.add_argument("--ready", metavar="PATH", help=argparse.SUPPRESS)


def run(job: str, result: str | None = None, ready: str | None = None) -> None:
    """Join the cluster, run ``job`` under its strategy, write its result.

    ``ready``, with ``{index}`` in it, is a file created once the cluster formed (the
    launcher waits for it).
    """
    joined = join_cluster()
    if ready:
        Path(ready.format(index=joined.index)).touch()
    value = run_job(read_job(job))
    if result and (joined.is_chief or "{index}" in result):
        write_value(Path(result.format(index=joined.index)), value)
    sys.stdout.flush()


def join_cluster() -> WorkerContext:
    """Join the cluster ``TF_CONFIG`` describes; returns this worker's context.

    The strategy is created before anything else touches TensorFlow (collective
    operations must be configured before the runtime starts); creating it waits until
    every worker of the cluster has joined. Then the Keras correction and chief-only
    saving are put in place.
    """
    task = tf_config.read_task()
    tf = _tensorflow.load()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    from nbreplica.cluster import keras_fix, saving  # they import Keras

    keras_fix.apply()
    saving.save_on_chief_only(task.is_chief)
    joined = WorkerContext(index=task.index, num_workers=task.num_workers,
                           is_chief=task.is_chief, strategy=strategy)
    enter(joined)
    return joined


def run_job(job: Job) -> Any:
    """Run ``job`` inside the strategy of the cluster this worker joined."""
    with context().strategy.scope():
        return job.run()

"""A worker's job: the function to run with its arguments, and what it returned.

Jobs and results travel as files written with cloudpickle, so a function defined in
a notebook (or a lambda) runs in a worker that never saw the notebook. A job can also
be named ``module:function`` for a function that workers can import.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from nbreplica import _tensorflow
from nbreplica._errors import NbreplicaError


@dataclass(frozen=True)
class Job:
    """``fn(*args, **kwargs)``, to run in every worker."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self) -> Any:
        """Call the function and return what it returns."""
        return self.fn(*self.args, **self.kwargs)


def write_job(path: str | os.PathLike[str], fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> Path:
    """Write ``fn(*args, **kwargs)`` to ``path`` for ``nbreplica worker PATH``.

    This is how a function defined in a notebook reaches workers that a cluster
    manager (Slurm, Kubernetes, ssh) starts: each of them runs
    ``nbreplica worker PATH`` with its own ``TF_CONFIG``.

    Raises:
        TypeError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function to run in every worker. Received: fn={fn!r}")
    path = Path(path)
    write_value(path, Job(fn, args, kwargs))
    return path


def read_job(target: str) -> Job:
    """The job in the file ``target``, or the function named ``module:function``.

    Raises:
        NbreplicaError: ``target`` is neither a job file nor an importable function.
    """
    if os.path.isfile(target):
        job = read_value(Path(target))
        if not isinstance(job, Job):
            raise NbreplicaError(
                f"{target} holds no job written by nbreplica.cluster.write_job. "
                f"Received: a {type(job).__name__}"
            )
        return job
    module_name, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), name) if name else None
    except (ImportError, AttributeError, ValueError) as exc:
        raise NbreplicaError(
            f"the job must be a file written by nbreplica.cluster.write_job or an "
            f"importable function named module:function ({exc}). Received: {target!r}"
        ) from exc
    if not callable(fn):
        raise NbreplicaError(
            "the job must be a file written by nbreplica.cluster.write_job or an "
            f"importable function named module:function. Received: {target!r}"
        )
    return Job(fn)


def write_value(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` with cloudpickle, whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(encode(value))
    partial.replace(path)


def read_value(path: Path) -> Any:
    """The value :func:`write_value` wrote to ``path``."""
    return decode(path.read_bytes())


def encode(value: Any) -> bytes:
    """``value`` as cloudpickle bytes."""
    return cloudpickle.dumps(value)


def decode(data: bytes) -> Any:
    """The value :func:`encode` turned into ``data``.

    A value that holds TensorFlow or Keras objects (a trained model) starts TensorFlow
    first, quietly.
    """
    if b"keras" in data or b"tensorflow" in data:
        _tensorflow.load()
    return cloudpickle.loads(data)

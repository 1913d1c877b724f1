"""A worker's job: the function to run with its arguments, and what it returned.

Jobs and results travel as files written with cloudpickle, so a function defined in
a notebook (or a lambda) runs in a worker that never saw the notebook. A job can also
be named ``module:function`` for a function that workers can import.
"""

from __future__ import annotations

import importlib
import os
import pickletools
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from nbreplica import _tensorflow
from nbreplica._errors import NbreplicaError

#: How an argument that cannot be pickled is shown.
_SHORT = reprlib.Repr()
_SHORT.maxother = _SHORT.maxstring = 120


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
        TypeError: ``fn`` is not callable, or it or an argument cannot be pickled (the
            message names which).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function to run in every worker. Received: fn={fn!r}")
    path = Path(path)
    write_bytes(path, encode_job(Job(fn, args, kwargs)))
    return path


def encode_job(job: Job) -> bytes:
    """``job`` as cloudpickle bytes.

    Raises:
        TypeError: the function or an argument cannot be pickled; the message names
            the first that cannot (``fn``, ``args[i]`` or a keyword's name).
    """
    try:
        return encode(job)
    except Exception as error:  # pickling raises TypeError, PicklingError, and more
        parts = {"fn": job.fn, **{f"args[{i}]": arg for i, arg in enumerate(job.args)},
                 **job.kwargs}
        name, failure = _first_unpicklable(parts) or ("the job", error)
        raise TypeError(
            f"{name} cannot be sent to the workers ({type(failure).__name__}: {failure}): "
            "pass values that cloudpickle can pickle, and create locks, open files and "
            f"connections inside fn. Received: {name}={_SHORT.repr(parts.get(name, job))}"
        ) from None


def _first_unpicklable(parts: dict[str, Any]) -> tuple[str, Exception] | None:
    """The name of the first of ``parts`` that cannot be pickled, and why."""
    for name, value in parts.items():
        try:
            encode(value)
        except Exception as error:  # whatever pickling raises is the answer
            return name, error
    return None


def check_job(target: str) -> None:
    """Raise now, before the worker joins its cluster, if ``target`` is a file that
    holds no pickle at all (its contents are read, not run).

    Raises:
        NbreplicaError: the file cannot be read, or is no pickle.
    """
    if os.path.isfile(target):
        try:
            for _ in pickletools.genops(Path(target).read_bytes()):
                pass
        except (OSError, ValueError) as error:
            raise _not_a_job(target, error) from None


def read_job(target: str) -> Job:
    """The job in the file ``target``, or the function named ``module:function``.

    Raises:
        NbreplicaError: ``target`` is neither a job file nor an importable function.
    """
    if os.path.isfile(target):
        try:
            job = read_value(Path(target))
        except Exception as error:  # a damaged or foreign file raises anything
            raise _not_a_job(target, error) from None
        if not isinstance(job, Job):
            raise NbreplicaError(
                f"{target} holds no job written by nbreplica.cluster.write_job. "
                f"Received: a {type(job).__name__}"
            )
        return job
    return Job(import_function(
        target, "the job must be a file written by nbreplica.cluster.write_job or"))


def import_function(target: str, expected: str) -> Callable[..., Any]:
    """The function named ``module:function`` by ``target``, imported.

    Raises:
        NbreplicaError: ``target`` names no importable function; the message starts
            with ``expected`` (what the caller takes), then says why.
    """
    module_name, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), name) if name else None
    except (ImportError, AttributeError, ValueError) as exc:
        raise NbreplicaError(
            f"{expected} an importable function named module:function ({exc}). "
            f"Received: {target!r}"
        ) from exc
    if not callable(fn):
        raise NbreplicaError(
            f"{expected} an importable function named module:function. Received: {target!r}"
        )
    return fn


def _not_a_job(target: str, error: BaseException) -> NbreplicaError:
    return NbreplicaError(
        f"{target} is not a job file written by nbreplica.cluster.write_job: it cannot "
        f"be read ({type(error).__name__}: {error}). Write it again with write_job. "
        f"Received: {target!r}"
    )


def write_value(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` with cloudpickle, whole or not at all."""
    write_bytes(path, encode(value))


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
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

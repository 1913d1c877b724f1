"""Where a worker writes its function's return value (``--result``), so that it is
never lost after training: the folder is checked before the worker joins its cluster,
and a value that cannot be written there goes to the temporary folder instead."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from nbreplica._errors import NbreplicaError
from nbreplica.cluster.job import encode, write_bytes


def check_folder(path: Path, flag: str) -> None:
    """Raise now, before any training, if no file can be written at ``path``.

    Raises:
        NbreplicaError: its folder does not exist or is not writable; the message
            names ``flag`` (the ``--result`` value as given).
    """
    folder = path.parent
    if not folder.is_dir():
        raise NbreplicaError(
            f"the folder of the result file, {folder}, does not exist: create it, or "
            f"name a file in an existing folder. Received: --result {flag}"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NbreplicaError(
            f"the folder of the result file, {folder}, is not writable: make it writable, "
            f"or name a file in another folder. Received: --result {flag}"
        )


def write_result(path: Path, value: Any, flag: str) -> None:
    """Write ``value`` to ``path``; if that fails, to a new file in the temporary
    folder.

    Raises:
        NbreplicaError: ``value`` cannot be pickled, or it could not be written to
            ``path``; the message says where it was written instead, if anywhere.
    """
    try:
        data = encode(value)
    except Exception as error:  # pickling raises TypeError, PicklingError, and more
        raise NbreplicaError(
            f"the function's return value cannot be pickled ({type(error).__name__}: "
            f"{error}): return values that cloudpickle can pickle. Received: a "
            f"{type(value).__name__}"
        ) from None
    try:
        write_bytes(path, data)
    except OSError as error:
        raise NbreplicaError(
            f"the result could not be written to {path} ({error}); "
            f"{_written_elsewhere(path, data)}. Received: --result {flag}"
        ) from None


def _written_elsewhere(path: Path, data: bytes) -> str:
    """Write ``data`` to a new file in the temporary folder; say where, or why not."""
    try:
        descriptor, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=path.suffix)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
    except OSError as error:
        return f"nor to the temporary folder ({error}): it is lost"
    return f"it was written to {name} instead: move it where it belongs"

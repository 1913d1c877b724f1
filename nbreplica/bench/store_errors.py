"""What went wrong with a results file, in words: SQLite's and the file system's errors
become a :class:`~nbreplica.ResultsStoreError` that names the file, says why it cannot
be used and what to do."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from nbreplica._errors import ResultsStoreError

#: Free bytes below which the disk of a results file counts as full before a sweep.
MIN_FREE_BYTES = 1 << 20
_ELSEWHERE = "pass another results_path (or set $NBREPLICA_RESULTS)"
#: Words of SQLite's messages -> what they mean, and what to do.
_CAUSES = (
    (("not a database", "malformed"), "is damaged or not a results file",
     f"move it away, or {_ELSEWHERE}"),
    (("disk is full", "disk i/o error"), "cannot be written: its disk is full or failing",
     f"free some space, or {_ELSEWHERE}"),
    (("readonly", "read-only"), "is read-only", f"make it writable, or {_ELSEWHERE}"),
    (("unable to open",), "cannot be opened",
     f"check that its folder exists and is writable, or {_ELSEWHERE}"),
)


@contextlib.contextmanager
def translated(path: Path, received: str) -> Iterator[None]:
    """Turn the SQLite and file-system errors raised inside into a
    :class:`ResultsStoreError` about the results file ``path``; ``received`` is the
    message's ``Received:`` part."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        if path.is_dir():
            raise _directory(path, received) from error
        # pandas wraps SQLite's error in its own, whose message quotes the query.
        reason = error.__cause__ if isinstance(error.__cause__, sqlite3.Error) else error
        what, todo = _cause(reason)
        raise ResultsStoreError(
            f"The results file {path} {what} ({reason}): {todo}. Received: {received}"
        ) from error


def check_usable(path: Path, received: str) -> None:
    """Raise :class:`ResultsStoreError` if ``path`` is a directory, cannot be created
    (when it does not exist), or its disk is full.

    SQLite's own errors for these come only when the first run is written.
    """
    if path.is_dir():
        raise _directory(path, received)
    folder = next(parent for parent in path.parents if parent.exists())
    if not path.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise ResultsStoreError(
            f"The results file {path} cannot be created: {folder} is no folder this process "
            f"may write to. Make it writable, or {_ELSEWHERE}. Received: {received}"
        )
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise ResultsStoreError(
            f"The results file {path} cannot be written: its disk is full ({free} bytes "
            f"free): free some space, or {_ELSEWHERE}. Received: {received}"
        )


def _directory(path: Path, received: str) -> ResultsStoreError:
    return ResultsStoreError(
        f"The results file {path} is a directory: pass a file's path, e.g. "
        f"{path / 'results.sqlite'}. Received: {received}"
    )


def _cause(error: BaseException) -> tuple[str, str]:
    """What ``error`` says is wrong with a results file, and what to do about it."""
    text = str(error).lower()
    for words, what, todo in _CAUSES:
        if any(word in text for word in words):
            return what, todo
    return "cannot be used", _ELSEWHERE

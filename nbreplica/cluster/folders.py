"""Launch folders: one ``nbreplica-launch-<pid>-*`` folder in the temporary folder per
local launch, holding its job, the workers' logs and their results.

A launch removes its own folder however it ends, unless its process is killed first
(SIGKILL, or a SIGTERM that Python does not turn into an exception): the folder's name
carries the launcher's process id, and the next launch removes every folder whose
launcher is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nbreplica.cluster.processes import running

PREFIX = "nbreplica-launch-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-")


@contextlib.contextmanager
def launch_folder() -> Iterator[Path]:
    """A new launch folder, removed when the block ends; the folders of launchers that
    are gone are removed first."""
    reclaim(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as name:
        yield Path(name)


def reclaim(root: Path) -> list[Path]:
    """Remove the launch folders in ``root`` whose launcher process is gone; returns
    them. A folder whose launcher is unknown (none in its name) is left alone."""
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        owner = _OWNED.match(folder.name)
        if owner and folder.is_dir() and not running(int(owner.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed

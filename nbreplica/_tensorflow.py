"""Start TensorFlow without its C++ start-up lines on the terminal or under a cell.

Importing TensorFlow, and its first look for GPUs, write lines straight to file
descriptor 2 from C++ (absl's "All log messages before absl::InitializeLog()",
oneDNN and CUDA notices, "failed call to cuInit" on machines without a driver).
Python's ``sys.stderr`` never sees them, and a notebook kernel shows them as a red
block under the cell. :func:`load` runs both steps with descriptor 2 pointed at a
temporary file; the lines are kept in :data:`startup_lines`, and written back when
the import fails, so nothing that explains a failure is lost.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from nbreplica.gpus import chosen, visible

#: What TensorFlow wrote to descriptor 2 while :func:`load` started it quietly.
startup_lines: list[str] = []


def load(quiet: bool = True) -> ModuleType:
    """Import TensorFlow (once) and let it look for GPUs; return the module.

    With ``quiet``, what TensorFlow writes to descriptor 2 meanwhile goes to
    :data:`startup_lines` instead. A TensorFlow that is already imported is returned
    as it is. Looking for GPUs does not start TensorFlow's runtime, so
    :func:`nbreplica.emulate_gpus` still works afterwards. A GPU selection made before
    (:func:`nbreplica.use_devices`) limits the GPUs TensorFlow may use from here on.
    """
    if "tensorflow" in sys.modules or not quiet:
        tensorflow = _start()
    else:
        with _descriptor_2_captured() as captured:
            tensorflow = _start()
        startup_lines.extend(captured)
    selection = chosen.selected_devices()
    if selection is not None:  # made before TensorFlow was imported: it limits it now
        note = visible.limit(tensorflow.config, selection)
        if note is not None:
            warnings.warn(note, UserWarning, stacklevel=2)
    return tensorflow


def _start() -> ModuleType:
    tensorflow = importlib.import_module("tensorflow")
    tensorflow.config.list_physical_devices("GPU")
    return tensorflow


@contextlib.contextmanager
def _descriptor_2_captured() -> Iterator[list[str]]:
    """Point descriptor 2 at a temporary file; yield the list its lines end up in.

    When the body raises, the captured lines are also written back to descriptor 2.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield lines
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines(keepends=True))
            if failed:
                os.write(2, "".join(lines).encode())

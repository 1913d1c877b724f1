"""How a benchmark starts TensorFlow: as nbreplica does, without TensorFlow's C++
start-up lines (absl, oneDNN, "Could not find cuda drivers") on the terminal.

Call it before anything imports keras or tensorflow::

    from _quiet import start_tensorflow

    tf = start_tensorflow()

    import keras  # noqa: E402
"""

from __future__ import annotations

import os
from types import ModuleType

EMULATED_GPUS = 8


def start_tensorflow(emulate: int | None = EMULATED_GPUS) -> ModuleType:
    """Emulate ``emulate`` GPUs unless ``NBREPLICA_EMULATE_GPUS`` says otherwise (set
    it to nothing for real GPUs; ``None`` emulates none), then start TensorFlow
    quietly (``nbreplica._tensorflow.load``) and return it."""
    if emulate is not None:
        os.environ.setdefault("NBREPLICA_EMULATE_GPUS", str(emulate))
    from nbreplica import _tensorflow

    return _tensorflow.load()

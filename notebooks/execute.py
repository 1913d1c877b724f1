"""Run the notebooks top to bottom in a real Jupyter kernel and save them with their
outputs, as a reader sees them on GitHub or nbviewer (no widgets rendered).

    python notebooks/execute.py                 # every notebook in notebooks/
    python notebooks/execute.py quickstart      # just notebooks/quickstart.ipynb

The kernel gets 8 simulated GPUs for the picker (``NBREPLICA_FAKE_NVML=8``), 8
emulated ones to train on (``NBREPLICA_EMULATE_GPUS=8``) and a scratch home folder, so
the sweeps land in a fresh results file at the default place, which reports show as
``~/.nbreplica/results.sqlite``. ``tests/notebook/test_notebooks.py`` runs the
notebooks the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import matplotlib
import nbformat
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent

#: Each notebook must stay quick on a 2-core machine.
BUDGET_S = 90


def kernel_environment(home: Path) -> dict[str, str]:
    """The kernel's environment: this one's, with simulated and emulated GPUs, home
    folder ``home``, and TensorFlow's logging at its default level."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("NBREPLICA_") and name != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(
        NBREPLICA_FAKE_NVML="8", NBREPLICA_EMULATE_GPUS="8", HOME=str(home),
        # Matplotlib's font cache, where it already is: built afresh in a new home,
        # it would announce itself under the first plot.
        MPLCONFIGDIR=environment.get("MPLCONFIGDIR", matplotlib.get_cachedir()),
    )
    return environment


def execute(path: Path, home: Path, timeout: int = BUDGET_S) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom in a fresh kernel whose home and
    working folder are ``home``, with its outputs; no cell may take ``timeout`` s.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed.
        nbclient.exceptions.CellTimeoutError: a cell took too long.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(home)}})
    client.execute(env=kernel_environment(home))
    return notebook


def main(argv: list[str] | None = None) -> int:
    """Run and save the notebooks named in ``argv`` (default: all of them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb")
    args = parser.parse_args(argv)
    paths = ([NOTEBOOKS_DIR / f"{name}.ipynb" for name in args.names]
             or sorted(NOTEBOOKS_DIR.glob("*.ipynb")))
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="nbreplica-notebook-") as home:
            # Generous: on a busy machine a cell may take longer than tests allow.
            nbformat.write(execute(path, Path(home), timeout=600), path)
        print(f"saved {path.relative_to(NOTEBOOKS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

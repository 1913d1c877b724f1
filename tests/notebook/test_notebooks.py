"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel with 8
emulated GPUs and a simulated NVIDIA driver, without an error."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from start_up_lines import start_up_lines_in

NOTEBOOKS_DIR = Path(__file__).parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))

#: Each notebook must stay quick on a 2-core machine.
BUDGET_S = 90


@pytest.mark.kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_without_error(path, tmp_path, monkeypatch):
    # The kernel inherits this environment; its files land in tmp_path.
    monkeypatch.setenv("NBREPLICA_EMULATE_GPUS", "8")
    monkeypatch.setenv("NBREPLICA_FAKE_NVML", "8")
    monkeypatch.setenv("NBREPLICA_RESULTS", str(tmp_path / "results.sqlite"))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=BUDGET_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f} s"
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert not errors
    texts = [str(output.get("text", "")) for cell in notebook.cells
             for output in cell.get("outputs", [])]
    assert [text for text in texts if start_up_lines_in(text)] == []


@pytest.mark.kernel
def test_the_quickstarts_first_cell_shows_no_tensorflow_start_up_lines(monkeypatch):
    # As a user's kernel starts on a machine without GPUs: nothing set beforehand.
    for name in ("NBREPLICA_EMULATE_GPUS", "NBREPLICA_FAKE_NVML", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOKS_DIR / "quickstart.ipynb", as_version=4)
    notebook.cells = [next(cell for cell in notebook.cells if cell.cell_type == "code")]
    NotebookClient(notebook, timeout=BUDGET_S, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    assert [output.output_type for output in outputs] == ["execute_result"]
    assert "Emulated GPU 7" in outputs[0]["data"]["text/plain"]

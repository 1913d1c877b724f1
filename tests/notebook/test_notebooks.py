"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel with 8
emulated GPUs and a simulated NVIDIA driver, without an error, run as
``notebooks/execute.py`` runs it to save it; its outputs read well where widgets do
not render; and the notebooks as saved in the repository read well too."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from nbclient import NotebookClient
from start_up_lines import start_up_lines_in

NOTEBOOKS_DIR = Path(__file__).parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))

#: A tqdm bar as text: "desc: 3/9 |███ | [...]".
_BAR = re.compile(r": (\d+)/(\d+) \|")


def load_executor() -> ModuleType:
    """``notebooks/execute.py`` as a module."""
    spec = importlib.util.spec_from_file_location("execute", NOTEBOOKS_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXECUTOR = load_executor()
BUDGET_S = EXECUTOR.BUDGET_S


def plain_texts(notebook: nbformat.NotebookNode) -> list[str]:
    """What a viewer without widgets shows of every output: streams and text/plain."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif "data" in output:
                texts.append(output.data.get("text/plain", ""))
    return texts


def unreadable_outputs(notebook: nbformat.NotebookNode, home: str) -> list[str]:
    """Outputs that read badly without widgets: a widget's Python repr, a progress bar
    short of its end, a temporary path."""
    bad = []
    for text in plain_texts(notebook):
        bars = _BAR.findall(text)
        if (re.match(r"\w+\(children=", text) or any(done != total for done, total in bars)
                or home in text or "/tmp/" in text):
            bad.append(text[:200])
    return bad


@pytest.mark.kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_without_error_and_reads_well_without_widgets(path, tmp_path):
    started = time.monotonic()
    notebook = EXECUTOR.execute(path, tmp_path)  # raises on the first failing cell
    elapsed = time.monotonic() - started
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert not errors
    texts = plain_texts(notebook)
    assert [text for text in texts if start_up_lines_in(text)] == []
    assert unreadable_outputs(notebook, str(tmp_path)) == []
    if path.stem == "quickstart":
        assert any(text.startswith("GPUs · NVML ready: 8 GPUs") for text in texts)
        assert any("stored in ~/.nbreplica/results.sqlite" in text for text in texts)
        assert any(_BAR.search(text) for text in texts)
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_the_saved_notebook_reads_well_without_widgets(path):
    notebook = nbformat.read(path, as_version=4)
    assert plain_texts(notebook)
    assert unreadable_outputs(notebook, "/tmp/") == []


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

"""A sweep inside a real Jupyter kernel: a tqdm progress widget, and figures that display."""

from __future__ import annotations

import base64

import nbclient
import nbformat
import pytest

PNG = b"\x89PNG\r\n\x1a\n"

CELL = """
import numpy as np, keras, nbreplica

def model_fn():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="cell_model")
    model.compile("sgd", "mse")
    return model

x = np.zeros((64, 4), "float32"); y = np.zeros((64, 2), "float32")
result = nbreplica.sweep(model_fn, x, y, devices=(1, 2), batch_size=16, repeats=1,
                         steps=2, warmup_steps=1, target_ci=None)
result.plot()
"""


@pytest.mark.kernel
def test_sweep_in_a_kernel_shows_a_progress_bar_and_its_figure(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    # The kernel inherits this environment: 8 emulated GPUs, and the test's results file.
    nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in
               o.get("data", {})]
    assert len(widgets) == 1  # the progress bar, not a text line
    assert not any(o.get("name") == "stderr" and "/2 |" in o.get("text", "") for o in outputs)
    # tqdm.auto chose tqdm.notebook: a progress widget between two HTML labels, left
    # full, with the sweep's title and how it ended.
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    models = state["state"].values()
    bars = [m["state"] for m in models if m["model_name"] == "FloatProgressModel"]
    assert [(bar["value"], bar["max"], bar["bar_style"]) for bar in bars] == [
        (2, 2, "success")]
    labels = [m["state"]["value"].replace("\u2007", " ")  # tqdm's figure spaces
              for m in models if m["model_name"] == "HTMLModel"]
    assert any(label.startswith("Sweep of 2 device counts on emulated GPUs: 2/2")
               for label in labels)
    assert any("Measured 2 points" in label for label in labels)
    images = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(PNG)

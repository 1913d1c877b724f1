"""``%%replicate --forecast HARDWARE`` in an IPython shell (8 emulated GPUs: see
tests/conftest.py)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

SETUP = """
import keras, numpy as np
inputs = keras.Input((8,))
model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(16)(inputs)), name="small")
model.compile("sgd", "mse")
x = np.zeros((64, 8), np.float32)
y = np.zeros((64, 2), np.float32)
"""


@pytest.fixture(scope="module")
def shell():
    """The test shell with the extension loaded, formatting displays in every format
    like a notebook kernel does."""
    ip = globalipapp.get_ipython()
    terminal_types = ip.display_formatter.active_types
    ip.display_formatter.active_types = list(ip.display_formatter.format_types)
    ip.run_line_magic("load_ext", "nbreplica")
    assert ip.run_cell(SETUP).success
    yield ip
    ip.run_line_magic("unload_ext", "nbreplica")
    ip.display_formatter.active_types = terminal_types


def run(shell, line: str, body: str):
    with capture_output() as captured:
        result = shell.run_cell(f"%%replicate {line}\n{body}")
    return result, captured


def test_the_cell_runs_then_its_models_forecast_is_shown_as_text_and_plot(shell):
    result, captured = run(shell, "-n 2 --forecast dgx1-v100",
                           "history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)")
    assert result.success, result.error_in_exec
    assert shell.user_ns["history"].history["loss"]  # the cell ran as it does without
    summary, shown = captured.outputs
    assert summary.data["text/plain"].startswith("%%replicate: split over 2 emulated GPUs")
    text = shown.data["text/plain"]
    assert text.startswith("Forecast: small on dgx1-v100, strategy='split'")
    assert "strong scaling" in " ".join(text.split()[:12])
    parts = text[text.index("Forecast step parts"):].splitlines()
    # The cell's batch of 16, split over 1, 2, 4 and 8 of the machine's GPUs.
    assert [line.split()[:2] for line in parts[2:6]] == [["1", "16"], ["2", "8"], ["4", "4"],
                                                         ["8", "2"]]
    page = shown.data["text/html"]
    assert "<pre>Forecast: small on dgx1-v100" in page
    assert "alt='forecast on dgx1-v100' src='data:image/png;base64," in page


def test_the_forecast_takes_the_cells_strategy_and_the_machines_gpus(shell):
    result, captured = run(shell, "-n 2 --strategy mirrored --forecast 4xRTX4090-pcie4",
                           "m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)],"
                           " name='mirrored_one')\nm.compile('sgd', 'mse')\n"
                           "m.fit(x, y, batch_size=32, epochs=1, verbose=0)")
    assert result.success, result.error_in_exec
    text = captured.outputs[-1].data["text/plain"]
    assert text.startswith("Forecast: mirrored_one on 4xRTX4090-pcie4, strategy='mirrored'")
    parts = text[text.index("Forecast step parts"):].splitlines()
    assert [line.split()[0] for line in parts[2:5]] == ["1", "2", "4"] and len(parts) <= 6


def test_a_cell_that_trains_nothing_says_there_is_nothing_to_forecast(shell):
    result, captured = run(shell, "-n 2 --forecast dgx-a100", "z = 1")
    assert result.success
    assert captured.stdout.startswith(
        "Nothing to forecast: --forecast forecasts the model a fit call in the cell trains")
    assert len(captured.outputs) == 1  # the summary


def test_an_unknown_machine_is_refused_before_the_cell_runs_and_lists_the_catalogue(shell):
    shell.user_ns["ran"] = False
    with pytest.raises(UsageError, match=r"argument --forecast: hardware must be .* "
                                         r"catalogue: 8xK80-pcie3, .*Received: hardware='dgx-2'"):
        shell.run_cell_magic("replicate", "-n 2 --forecast dgx-2", "ran = True")
    assert shell.user_ns["ran"] is False


def test_forecast_does_not_combine_with_workers(shell):
    with pytest.raises(UsageError, match="--forecast does not combine with --workers"):
        shell.run_cell_magic("replicate", "--workers 2 --forecast dgx-a100", "z = 1")


def test_help_describes_forecast(shell):
    with capture_output() as captured:
        shell.run_cell("%%replicate?")
    assert "--forecast HARDWARE" in captured.stdout
    assert "Rules of ``--forecast HARDWARE``" in captured.stdout

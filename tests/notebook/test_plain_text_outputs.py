"""What a saved notebook shows where widgets do not render (GitHub, nbviewer): the
text each display leaves beside its widget. The picker's is its GPUs and selection,
a sweep's progress bar ends in its final state, and a report names the results file
under the home folder as ``~``."""

from __future__ import annotations

import io
from pathlib import Path

import ipywidgets
import pytest
import tqdm.notebook

import nbreplica
from nbreplica.bench import progress
from nbreplica.bench.progress import BarProgress, Status
from nbreplica.bench.report import shown_path
from nbreplica.testing import fake_nvml, plausible_gpus


pytestmark = pytest.mark.usefixtures("widgets_without_a_kernel")


class Displays:
    """Stands in for IPython's ``display``: records the plain text of every display
    and of every update of it, as a notebook would save them."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, obj, display_id=None):
        self.texts.append(repr(obj))
        return self

    def update(self, obj, raw=False) -> None:
        self.texts.append(obj["text/plain"] if raw else repr(obj))


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_the_pickers_text_lists_the_gpus_and_the_selection(monkeypatch):
    # The test comm makes widgets refuse to display; this is what ipywidgets gives.
    monkeypatch.setattr(ipywidgets.Widget, "_repr_mimebundle_", lambda self, **_: {
        "text/plain": f"{type(self).__name__}(children=(...))",
        WIDGET_VIEW: {"model_id": self.model_id}})
    with fake_nvml(*plausible_gpus(8)):
        picker = nbreplica.GpuPicker(refresh_interval=60)
        try:
            picker.selected = [2, 4]
            bundle = picker._repr_mimebundle_()
            assert bundle[WIDGET_VIEW] == {"model_id": picker.model_id}
        finally:
            picker.close()
    text = bundle["text/plain"]
    lines = text.splitlines()
    assert lines[0].startswith("GPUs · NVML ready: 8 GPUs")
    assert [line.split("]")[0] for line in lines if line.startswith("[")] == [
        f"[{index}" for index in range(8)]
    assert lines[-1] == ('replicate() will use GPUs 2, 4 · shares="auto" (NVML): GPU 2 50%, '
                         'GPU 4 50% · shares="memory": GPU 2 77%, GPU 4 23%')
    assert "children=" not in text


def test_a_notebook_bar_is_saved_in_its_final_state(monkeypatch):
    displays = Displays()
    monkeypatch.setattr(progress, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setattr(progress, "display", displays)
    monkeypatch.setattr(ipywidgets.Widget, "_repr_mimebundle_", lambda self, **_: {
        "text/plain": repr(self)[:110], WIDGET_VIEW: {"model_id": "bar"}})
    bar = BarProgress()
    bar.start(9, "Sweep of the cell over 1, 2, 4 devices")
    for done in range(9):
        bar.update(Status(done, 9, f"point {done + 1}", seconds_left=None))
    bar.finish("done in 00:35", "completed")
    assert displays.texts[0].startswith("Sweep of the cell over 1, 2, 4 devices: 0/9 |")
    assert displays.texts[-1].startswith("Sweep of the cell over 1, 2, 4 devices: 9/9 |█")
    assert displays.texts[-1].endswith("done in 00:35]")


def test_a_bar_on_a_terminal_displays_nothing(monkeypatch):
    displays = Displays()
    monkeypatch.setattr(progress, "display", displays)
    bar = BarProgress(file=io.StringIO())
    bar.start(3, "Sweep")
    bar.finish("done", "completed")
    assert displays.texts == []


def test_a_results_file_under_home_is_shown_from_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert shown_path(tmp_path / ".nbreplica" / "results.sqlite") == "~/.nbreplica/results.sqlite"
    assert shown_path(Path("/srv/results.sqlite")) == "/srv/results.sqlite"
    assert shown_path(Path("results.sqlite")) == "results.sqlite"

"""Progress reporting: the tqdm bar's label, time left and widest interval, and the
choice of reporter.

The notebook widget is checked in a real kernel (test_sweep_notebook.py).
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from tqdm.notebook import tqdm as widget_bar
from tqdm.std import tqdm as text_bar

from nbreplica.bench.measure import Point
from nbreplica.bench.progress import (
    BarProgress,
    NoProgress,
    Status,
    make_progress,
    titled,
)
from nbreplica.bench.schedule import TimeLeft

from sweep_helpers import GPUS


def test_time_left_from_the_points_measured_so_far():
    single, split2, split4 = (Point(strategy, GPUS[:count], 1, 32) for strategy, count in
                              (("single", 1), ("split", 2), ("split", 4)))
    time_left = TimeLeft()
    assert time_left.estimate([single, split2]) is None  # nothing measured yet
    time_left.add(single, 2.0)
    time_left.add(split2, 4.0)
    # A kind measured before takes as long again; an unmeasured one the mean (3 s).
    assert time_left.estimate([split2, split4, single]) == 4.0 + 3.0 + 2.0
    # The same strategy on another repeat is the same kind; the latest time counts.
    time_left.add(Point("split", GPUS[:2], 2, 32), 6.0)
    assert time_left.estimate([split2]) == 6.0
    assert time_left.estimate([]) == 0


def test_status_names_the_point_and_the_time_left():
    assert Status(0, 4, "single on 1 device, repeat 1", None).describe() == (
        "single on 1 device, repeat 1 · estimating time left")
    assert Status(1, 4, "split on 2 devices, repeat 1", 75.0).describe() == (
        "split on 2 devices, repeat 1 · about 01:15 left")
    assert Status(1, 4, "x", 3725.0).describe() == "x · about 1:02:05 left"


def test_adaptive_status_shows_the_widest_interval_and_the_budget_left():
    adaptive = Status(9, 12, "split on 4 devices, repeat 4", 130.0, at_most=True,
                      widest=(("split", 8), 0.184), target_ci=0.10)
    assert adaptive.describe() == ("split on 4 devices, repeat 4 · widest interval "
                                   "split×8 18% (target 10%) · at most 02:10 left")
    early = Status(3, 12, "single on 1 device, repeat 2", 170.0, at_most=True,
                   widest=(("split", 2), float("inf")), target_ci=0.10)
    assert "widest interval split×2 too few repeats (target 10%)" in early.describe()


def test_the_bar_on_a_terminal_shows_each_point_and_the_time_left():
    stream = io.StringIO()
    progress = BarProgress(stream)
    progress.start(4, "Sweep of 2 device counts")
    # Outside a notebook kernel tqdm.auto picks the text bar, not the widget.
    assert isinstance(progress.bar, text_bar) and not isinstance(progress.bar, widget_bar)
    progress.update(Status(0, 4, "single on 1 device, repeat 1", None))
    progress.update(Status(1, 4, "split on 2 devices, repeat 1", 75.0))
    progress.finish("Measured 4 points", "completed")
    frames = [frame.rstrip() for frame in stream.getvalue().split("\r") if frame.strip()]
    assert frames[1].startswith("Sweep of 2 device counts: 0/4 |")
    assert frames[1].endswith(", single on 1 device, repeat 1 · estimating time left]")
    assert frames[2].startswith("Sweep of 2 device counts: 1/4 |")
    assert frames[2].endswith(", split on 2 devices, repeat 1 · about 01:15 left]")
    assert frames[-1].startswith("Sweep of 2 device counts: 4/4 |")
    assert frames[-1].endswith(", Measured 4 points]")
    assert stream.getvalue().endswith("\n")


def test_the_bar_grows_with_an_adaptive_sweeps_rounds():
    stream = io.StringIO()
    progress = BarProgress(stream)
    progress.start(4, "Sweep")
    progress.update(Status(3, 4, "split on 2 devices, repeat 2", 40.0, at_most=True))
    progress.update(Status(4, 6, "single on 1 device, repeat 3", 30.0, at_most=True))
    progress.finish("Measured 6 points; every speedup interval within 10%", "completed")
    frames = [frame.rstrip() for frame in stream.getvalue().split("\r") if frame.strip()]
    assert frames[-2].startswith("Sweep: 4/6 |")
    assert frames[-1].startswith("Sweep: 6/6 |")
    assert frames[-1].endswith(", Measured 6 points; every speedup interval within 10%]")


def test_an_interrupted_bar_stays_where_it_stopped():
    stream = io.StringIO()
    progress = BarProgress(stream)
    progress.start(6, "Sweep")
    progress.update(Status(2, 6, "split on 4 devices, repeat 1", 30.0))
    progress.finish("Interrupted after 2 of 6 points", "interrupted")
    last = stream.getvalue().split("\r")[-1]
    assert "Sweep: 2/6 |" in last and last.rstrip().endswith(
        ", Interrupted after 2 of 6 points]")


def test_the_title_says_when_the_devices_are_emulated():
    emulated = [dataclasses.replace(gpu, emulated=True) for gpu in GPUS]
    assert titled("Sweep of 4 device counts", emulated) == (
        "Sweep of 4 device counts on emulated GPUs")
    assert titled("Sweep of 4 device counts", GPUS) == "Sweep of 4 device counts"


def test_choice_of_progress():
    assert isinstance(make_progress(None), BarProgress)
    assert isinstance(make_progress(True), BarProgress)
    assert isinstance(make_progress(False), NoProgress)
    custom = NoProgress()
    assert make_progress(custom) is custom
    with pytest.raises(TypeError, match="Received: progress='bar'"):
        make_progress("bar")


def test_a_silent_sweep_writes_nothing(capsys):
    progress = make_progress(False)
    progress.start(2, "Sweep")
    progress.update(Status(1, 2, "split on 2 devices, repeat 1", 3.0))
    progress.finish("Measured 2 points", "completed")
    assert capsys.readouterr() == ("", "")

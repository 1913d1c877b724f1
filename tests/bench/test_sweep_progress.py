"""Progress reporting: the terminal line and the notebook widget."""

from __future__ import annotations

import io

import pytest

from nbreplica.bench.measure import Point
from nbreplica.bench.progress import (
    NoProgress,
    TextProgress,
    TimeLeft,
    format_duration,
    make_progress,
)
from nbreplica.notebook.progress import WidgetProgress, in_notebook_kernel

from sweep_helpers import GPUS


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations():
    assert [format_duration(s) for s in (None, 0, 65, 3725)] == ["?", "0:00", "1:05",
                                                                 "1:02:05"]


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


def test_text_progress_in_a_log():
    stream = io.StringIO()
    progress = TextProgress(stream)
    progress.start(4, "Sweep of 2 device counts")
    progress.update(0, "single on 1 device, repeat 1", None)
    progress.update(1, "split on 2 devices, repeat 1", 75.0)
    progress.finish("Measured 4 points", "completed")
    assert stream.getvalue().splitlines() == [
        "Sweep of 2 device counts: 4 points",
        "[0/4] single on 1 device, repeat 1 · estimating time left",
        "[1/4] split on 2 devices, repeat 1 · about 1:15 left",
        "Measured 4 points in 0:00",
    ]


def test_text_progress_on_a_terminal_rewrites_one_line():
    stream = Terminal()
    progress = TextProgress(stream)
    progress.start(2, "Sweep")
    progress.update(0, "a long description of the point", None)
    progress.update(1, "short", 3.0)
    progress.finish("Interrupted after 1 of 2 points", "interrupted")
    output = stream.getvalue()
    assert output.count("\n") == 2
    assert "\r[1/2] short · about 0:03 left" in output
    assert output.endswith("Interrupted after 1 of 2 points in 0:00\n")


def test_widget_progress():
    progress = WidgetProgress()
    progress.start(6, "Sweep of 3 device counts")
    assert (progress.bar.value, progress.bar.max) == (0, 6)
    progress.update(2, "split on 4 devices, repeat 1", 30.0)
    assert progress.bar.value == 2
    assert progress.label.value == "[2/6] split on 4 devices, repeat 1 · about 0:30 left"
    progress.finish("Interrupted after 2 of 6 points", "interrupted")
    assert (progress.bar.value, progress.bar.bar_style) == (2, "warning")
    progress.finish("Measured 6 points", "completed")
    assert (progress.bar.value, progress.bar.bar_style) == (6, "success")


def test_choice_of_progress():
    assert not in_notebook_kernel()
    assert isinstance(make_progress(None), TextProgress)
    assert isinstance(make_progress(False), NoProgress)
    custom = NoProgress()
    assert make_progress(custom) is custom
    with pytest.raises(TypeError, match="Received: progress='bar'"):
        make_progress("bar")

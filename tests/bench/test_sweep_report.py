"""Figures, the text table, and the saved report (PNG, CSV, self-contained HTML)."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd
import pytest
import tensorflow as tf
from IPython.core.formatters import HTMLFormatter, PNGFormatter
from IPython.lib.pretty import pretty

import nbreplica
from nbreplica.bench.plots import EMULATED_NOTE, MISSED_TARGET_LABEL, UNRELIABLE_LABEL
from nbreplica.bench.result import SweepResult
from nbreplica.bench.stats import geometric_interval, summarize
from nbreplica.bench.tables import recommendations, summary_cells
from nbreplica.bench.terminal import wrapped

from sweep_helpers import QUICK, STEADY, stored_runs, tiny_data, tiny_model

PNG = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"


def figure_text(figure) -> str:
    """Every text the figure shows beside its axes, its title first (the declared
    matplotlib minimum, 3.7, has no ``Figure.get_suptitle``)."""
    return "\n".join(text.get_text() for text in figure.texts)


def test_scaling_figure(side_by_side):
    figure = side_by_side.plot()
    speedup, efficiency, throughput = figure.axes
    assert (speedup.get_title(), speedup.get_xlabel(), speedup.get_ylabel()) == (
        "Speedup vs 1 device", "devices", "speedup (×)")
    assert efficiency.get_ylabel() == "efficiency (%)"
    assert throughput.get_ylabel() == "samples / s"
    title = figure_text(figure)
    assert "tiny · global batch 32 (strong scaling) · split vs mirrored" in title
    assert "no error bars: no point is reliable" in title  # 3 timed steps per repeat
    assert EMULATED_NOTE in [text.get_text() for text in figure.texts]
    labels = speedup.get_legend_handles_labels()[1]
    assert labels[0] == "ideal (linear)"
    assert {"split", "mirrored", UNRELIABLE_LABEL} <= set(labels)
    ideal = speedup.get_lines()[0]
    assert list(ideal.get_xdata()) == pytest.approx(list(ideal.get_ydata()))
    # A notebook shows it as an image even where pyplot was never imported.
    assert PNGFormatter()(figure).startswith(PNG)


def unwrapped(text: str) -> list[str]:
    """The lines of terminal text, each note joined back into one line."""
    return text.replace("\n  ", " ").splitlines()


def test_text_table(side_by_side):
    table = side_by_side.table()
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["strategy", "devices", "samples/s", "speedup"]
    assert header.split()[-1] == "reliability"
    assert rows[0].split()[:2] == ["single", "1"]
    assert "1.00 (unreliable)" in rows[0] and rows[0].endswith("  unreliable")
    lines = unwrapped(table)
    assert any(line.startswith("Unreliable single×1: 3 timed steps/repeat") for line in lines)
    assert "[" not in table
    assert lines[-2].startswith("split: scaling law not fitted and no device count "
                               "recommended: 3 of 3 points unreliable: time ≥ ")


def test_a_tiny_sweep_says_its_figures_are_unreliable(tmp_path):
    x, y = tiny_data()
    tiny = nbreplica.sweep(tiny_model, x, y, devices=(1, 2), batch_size=32, repeats=2,
                           name="tiny", **{**QUICK, "steps": 2})
    frame = tiny.frame
    # Each reason may go on (repeats that disagree, a baseline that is unreliable).
    reasons = [f"2 timed steps/repeat, time ≥ {needed}; 2 repeats, run ≥ 3"
               for needed in frame["steps_needed"]]
    table = tiny.table()
    lines = unwrapped(table)
    rows, notes = lines[1:3], lines[3:5]
    for row, note, point, reason, rate, speedup in zip(
            rows, notes, ("single×1", "split×2"), reasons, frame["samples_per_s"],
            frame["speedup"]):
        assert f"{rate:,.0f} (unreliable)" in row and f"{speedup:.2f} (unreliable)" in row
        assert row.endswith("  unreliable") and note.startswith(f"Unreliable {point}: {reason}")
    assert notes[1].endswith("; baseline unreliable")  # split's speedup divides by it
    assert "[" not in table  # no interval is printed as if it were one
    fit = ("split: scaling law not fitted and no device count recommended: 2 of 2 "
           f"points unreliable: time ≥ {frame['steps_needed'].max()} steps/repeat (now 2), "
           "run ≥ 3 repeats (now 2)")
    assert lines[-1].startswith(fit)  # after the note on any column left out
    for shown in (tiny._repr_html_(), tiny.save(tmp_path / "tiny")["report"].read_text()):
        for reason in reasons:
            assert f"<td>unreliable: {html.escape(reason)}" in shown
        assert f"<p>{html.escape(fit)}" in shown
        assert "–" not in shown  # no "low–high" interval anywhere
    figure = tiny.plot()
    notes = [text.get_text() for text in figure.texts]
    for point, reason in zip(("single×1", "split×2"), reasons):
        assert any(note.startswith(f"Unreliable ({point}): {reason}") for note in notes)
    for axes in figure.axes:
        assert all(len(bars.lines[0].get_xdata()) == 0 for bars in axes.containers)
    hollow = [line for line in figure.axes[0].get_lines() if
              line.get_label() == UNRELIABLE_LABEL]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [1, 2]
    assert hollow[0].get_markerfacecolor() == "white"
    assert not any("fit" in line.get_label() for line in figure.axes[0].get_lines())


def test_a_steady_sweep_shows_its_intervals_and_fit(tmp_path):
    steady = SweepResult(stored_runs(STEADY, steps=50, step_cv=0.05), pd.DataFrame(
        columns=["time", "device", "metric", "value"]), name="steady", sweep_id="s1",
        results_path=tmp_path / "r.sqlite", planned_points=9)
    table = steady.table()
    assert "unreliable" not in table
    rows = unwrapped(table)
    split4 = steady.frame.iloc[2]
    assert rows[3].split()[:5] == [
        "split", "4", f"{split4.samples_per_s:,.0f}", f"{split4.speedup:.2f}",
        f"[{split4.speedup_low:.2f}–{split4.speedup_high:.2f}]"]
    assert all(re.search(r"  ±(<1|\d)%$", row) for row in rows[1:4])
    assert rows[4] == ("[low–high]: the interval across repeats that holds the true figure "
                       "with probability 95%; ±: half its width, relative to the speedup (to "
                       "samples/s for the baseline)")
    fit = next(row for row in rows if row.startswith("split: "))
    assert fit.startswith("split: amdahl serial fraction 0.")
    assert fit.endswith("recommended devices 4 (efficiency >= 70%)")
    assert (f"<td>{split4.samples_per_s:,.0f} [{split4.samples_per_s_low:,.0f}–"
            f"{split4.samples_per_s_high:,.0f}]</td>") in steady._repr_html_()
    figure = steady.plot()
    assert ("error bars: intervals across repeats, holding the true figure with "
            "probability ≥ 95%") in figure_text(figure)
    assert not any(text.get_text().startswith("Unreliable") for text in figure.texts)
    speedup = figure.axes[0]
    labels = speedup.get_legend_handles_labels()[1]
    assert UNRELIABLE_LABEL not in labels and "split: amdahl fit" in labels[-1]
    bars = [len(container.lines[0].get_xdata()) for container in speedup.containers]
    assert bars == [3]


def test_points_wider_than_the_target_are_marked_with_the_width_reached(tmp_path):
    throughputs = {
        ("single", 1): [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0],
        ("split", 2): [1800.0, 1810.0, 1790.0, 1805.0, 1795.0, 1800.0],
        ("split", 4): [3000.0, 3400.0, 2700.0, 3200.0, 2900.0, 3100.0],
    }
    adaptive = SweepResult(
        stored_runs(throughputs, steps=50, step_cv=0.05, target_ci=0.10),
        pd.DataFrame(columns=["time", "device", "metric", "value"]), name="adaptive",
        sweep_id="s1", results_path=tmp_path / "r.sqlite", planned_points=18)
    frame = adaptive.frame.set_index("devices")
    assert frame.loc[2, "target_met"] and not frame.loc[4, "target_met"]
    assert pd.isna(frame.loc[1, "target_met"])
    wide = frame.loc[4, "interval_width"]
    # An adaptive sweep's interval: at the sequential level (97.5% for 95%).
    interval = geometric_interval(
        [rate / base for rate, base in zip(throughputs[("split", 4)],
                                           throughputs[("single", 1)])], sequential=True)
    assert wide == pytest.approx((interval.high - interval.low) / interval.median)
    assert interval.median == pytest.approx(frame.loc[4, "speedup"])
    widths = summary_cells(adaptive.frame)["interval width"]
    assert list(widths) == ["", "1%", f"{wide:.0%} > 10% target"]  # met: the width alone
    header, single, split2, split4, *notes = unwrapped(adaptive.table())
    assert "interval width" not in header  # the reliability words and the note say it
    assert split4.endswith(": repeats disagree")
    note = ("Speedup intervals wider than the target when the time budget ended: "
            f"split×4 {wide:.0%} (target 10%)")
    assert note in notes
    assert html.escape(note) in adaptive._repr_html_()
    figure = adaptive.plot()
    assert note in [text.get_text() for text in figure.texts]
    speedup = figure.axes[0]
    assert MISSED_TARGET_LABEL in speedup.get_legend_handles_labels()[1]
    red_bars = [container for container in speedup.containers
                if container.get_label() == MISSED_TARGET_LABEL]
    assert [list(bars.lines[0].get_xdata()) for bars in red_bars] == [[4]]


def test_a_fixed_sweep_has_no_width_column():
    fixed = stored_runs(STEADY, steps=50, step_cv=0.05)
    summary = summarize(fixed)
    assert summary["target_ci"].isna().all() and summary["target_met"].isna().all()
    assert "interval width" not in summary_cells(summary).columns


def test_notebook_display_shows_the_summary_and_the_recommendations(side_by_side):
    shown = HTMLFormatter()(side_by_side)
    assert shown == side_by_side._repr_html_()
    assert shown.startswith("<div class='nbreplica-sweep'><p><b>Sweep &#x27;side-by-side"
                            f"&#x27;, stored in {side_by_side.results_path}</b></p>")
    assert f">{html.escape(EMULATED_NOTE)}</p>" in shown
    assert re.findall(r"<th>([^<]*)</th>", shown) == [
        "strategy", "devices", "samples/s", "speedup", "efficiency", "step p50/p90 ms",
        "first step s", "peak mem GiB", "util %", "reliability"]
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>\s*<td>(\d+)</td>", shown)
    assert rows == [("single", "1"), ("split", "2"), ("split", "4"), ("mirrored", "2"),
                    ("mirrored", "4")]
    assert "<td>1.00 (unreliable)</td>" in shown and "<td>n/a</td>" in shown
    lines = recommendations(side_by_side.scaling)
    assert [line.split(":")[0] for line in lines] == ["split", "mirrored"]
    for line in lines:
        assert f"<p>{html.escape(line)}</p>" in shown
    assert "scaling law not fitted" in lines[0]


def test_text_display_in_ipython(side_by_side):
    assert pretty(side_by_side) == "\n".join([
        f"Sweep 'side-by-side', stored in {side_by_side.results_path}",
        wrapped(EMULATED_NOTE), side_by_side.table()])
    assert repr(side_by_side) == (
        f"<SweepResult 'side-by-side' id={side_by_side.sweep_id} points=15>")


def test_display_of_a_stopped_sweep(side_by_side, tmp_path):
    def stopped_after(points: int) -> SweepResult:
        return SweepResult(side_by_side.runs.iloc[:points], side_by_side.samples,
                           name="stopped", sweep_id="s1", results_path=tmp_path / "r.sqlite",
                           planned_points=15, interrupted=True)

    three = stopped_after(3)
    heading = f"Sweep 'stopped' (stopped after 3 of 15 points), stored in {tmp_path}"
    assert pretty(three).startswith(heading)
    assert html.escape(heading) in three._repr_html_()
    assert three._repr_html_().count("<tr>") == 3
    nothing = stopped_after(0)
    assert pretty(nothing) == (f"Sweep 'stopped' (stopped after 0 of 15 points), stored "
                               f"in {tmp_path / 'r.sqlite'}\nNo point was measured.")
    assert nothing._repr_html_().endswith("<p>No point was measured.</p></div>")
    assert "<table" not in nothing._repr_html_()


def test_save_writes_every_file(side_by_side, tmp_path):
    paths = side_by_side.save(tmp_path / "report")
    assert set(paths) == {"summary", "runs", "scaling", "report"}  # no device counters
    for path in paths.values():
        assert path.stat().st_size > 0
    assert paths["scaling"].read_bytes().startswith(PNG)
    summary = pd.read_csv(paths["summary"])
    assert list(summary["devices"]) == list(side_by_side.frame["devices"])
    assert len(pd.read_csv(paths["runs"])) == 15
    page = paths["report"].read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(PNG)
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained
    assert side_by_side.sweep_id in page and tf.__version__ in page


def test_html_escapes_every_user_string(side_by_side, tmp_path):
    runs = side_by_side.runs.assign(sweep_name=EVIL, model=EVIL, device_names=EVIL,
                                    host=EVIL,
                                    strategy=side_by_side.runs["strategy"].replace("split", EVIL))
    result = SweepResult(runs, side_by_side.samples, name=EVIL,
                         sweep_id=side_by_side.sweep_id,
                         results_path=tmp_path / f"{EVIL}.sqlite", planned_points=15)
    page = result.save(tmp_path / "evil")["report"].read_text()
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 6
    # The notebook display: the name and path in the heading, the strategy in two
    # table rows and in its recommendation.
    shown = result._repr_html_()
    assert "<script" not in shown
    assert shown.count("&lt;script&gt;") == 5


def test_comparison_of_two_stored_sweeps(tmp_path):
    x, y = tiny_data()
    for batch in (16, 48):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 2), batch_size=batch, repeats=2,
                        name=f"batch {batch}", **QUICK)
    stored = nbreplica.load_results()
    figure = nbreplica.plot_comparison(stored)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert {"batch 16 · split", "batch 48 · split"} <= set(labels)
    assert "global batch 16 / 48" in figure_text(figure)
    # Summaries (SweepResult.frame) are accepted as well as stored runs.
    summaries = summarize(stored)
    assert nbreplica.plot_comparison(summaries).axes[0].get_legend_handles_labels()[1] == labels

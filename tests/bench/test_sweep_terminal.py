"""A sweep's summary on a terminal: a table that fits 100 columns, labelled when its
devices were emulated, with reliability said in words."""

from __future__ import annotations

import pandas as pd
import pytest

from nbreplica.bench.plots import EMULATED_NOTE
from nbreplica.bench.report import SIMULATED_NOTE, device_notes, summary_text
from nbreplica.bench.result import SweepResult
from nbreplica.bench.stats import scaling_table, summarize
from nbreplica.bench.tables import as_text, reliability_words, summary_cells
from nbreplica.bench.terminal import WIDTH, Column, fitted, render

from sweep_helpers import STEADY, stored_runs

#: Throughputs of a 1-2-4-8 sweep of split and mirrored, six repeats each; split×8
#: repeats disagree (one repeat met a busy machine).
EIGHT = {
    ("single", 1): [100_000.0, 101_000.0, 99_000.0, 100_500.0, 99_500.0, 100_000.0],
    ("split", 2): [180_000.0, 181_000.0, 179_000.0, 180_500.0, 179_500.0, 180_000.0],
    ("split", 4): [300_000.0, 310_000.0, 295_000.0, 305_000.0, 298_000.0, 302_000.0],
    ("split", 8): [400_000.0, 330_000.0, 480_000.0, 410_000.0, 380_000.0, 450_000.0],
    ("mirrored", 2): [170_000.0, 171_000.0, 169_000.0, 170_500.0, 169_500.0, 170_000.0],
    ("mirrored", 4): [280_000.0, 290_000.0, 275_000.0, 285_000.0, 278_000.0, 282_000.0],
    ("mirrored", 8): [390_000.0, 400_000.0, 380_000.0, 395_000.0, 385_000.0, 392_000.0],
}


def result(runs: pd.DataFrame, tmp_path) -> SweepResult:
    return SweepResult(runs, pd.DataFrame(columns=["time", "device", "metric", "value"]),
                       name="eight", sweep_id="s1", results_path=tmp_path / "r.sqlite",
                       planned_points=len(runs))


def text(runs: pd.DataFrame) -> str:
    summary = summarize(runs)
    return as_text(summary, scaling_table(summary))


@pytest.mark.parametrize(("steps", "target_ci"), [(50, None), (50, 0.10), (4, None),
                                                   (4, 0.10)])
def test_a_1_2_4_8_sweep_of_two_strategies_fits_100_columns(steps, target_ci):
    runs = stored_runs(EIGHT, steps=steps, step_cv=0.05, target_ci=target_ci)
    runs["peak_memory_bytes"] = 30 * 1024**3  # as real GPUs report: more columns
    runs["mean_utilization"] = 87.0
    lines = text(runs).splitlines()
    assert max(len(line) for line in lines) <= WIDTH == 100
    header, *rows = lines[:8]
    assert header.split()[:5] == ["strategy", "devices", "samples/s", "speedup",
                                  "efficiency"]
    assert header.endswith("reliability")
    assert [row.split()[:2] for row in rows] == [
        ["single", "1"], ["split", "2"], ["split", "4"], ["split", "8"],
        ["mirrored", "2"], ["mirrored", "4"], ["mirrored", "8"]]
    shown = header.split("  ")
    every = summary_cells(summarize(runs)).columns
    left_out = [column for column in every if column not in " ".join(shown)
                and column != "interval width"]
    if left_out:  # named, with where to find them
        note = next(line for line in lines if line.startswith("Left out to fit 100 columns"))
        assert all(column in " ".join(lines[lines.index(note):]) for column in left_out)


def test_reliability_says_how_well_each_figure_is_known():
    summary = summarize(stored_runs(EIGHT, steps=50, step_cv=0.05))
    words = dict(zip(zip(summary["strategy"], summary["devices"]), reliability_words(summary)))
    rows = summary.set_index(["strategy", "devices"])
    for point, said in words.items():
        row = rows.loc[point]
        figure = "samples_per_s" if point == ("single", 1) else "speedup"
        half = (row[f"{figure}_high"] - row[f"{figure}_low"]) / row[figure] / 2
        spread = "±<1%" if half < 0.005 else f"±{half:.0%}"
        assert said == (spread if 2 * half <= 0.10 else f"{spread}: repeats disagree"), point
    assert words[("single", 1)] == "±1%"  # throughput: 99,000–101,000 around 100,000
    assert words[("split", 8)].endswith(": repeats disagree")
    assert sum(said.endswith("disagree") for said in words.values()) == 1
    table = as_text(summary, scaling_table(summary))
    assert "stable" not in table
    split8 = next(line for line in table.splitlines() if line.split()[:2] == ["split", "8"])
    assert split8.endswith(words[("split", 8)])
    assert any(line.startswith("[low–high]:") and "±: half its" in line
               for line in table.splitlines())


def test_unreliable_rows_say_why_below_the_table():
    summary = summarize(stored_runs(STEADY, steps=4, step_cv=0.05))
    lines = as_text(summary, scaling_table(summary)).splitlines()
    rows = lines[1:4]
    assert all(row.endswith("  unreliable") for row in rows)
    assert "(unreliable)" in rows[0] and "[" not in "".join(rows)
    notes = [line for line in lines if line.startswith("Unreliable ")]
    assert [note.split(":")[0] for note in notes] == [
        "Unreliable single×1", "Unreliable split×2", "Unreliable split×4"]
    assert notes[1].startswith(f"Unreliable split×2: {summary['unreliable_reason'][1]}"[:60])
    html = summary_cells(summary)["reliability"]
    assert list(html) == [f"unreliable: {reason}" for reason in summary["unreliable_reason"]]


def test_emulated_devices_are_said_before_the_table(tmp_path):
    runs = stored_runs(STEADY, steps=50, step_cv=0.05)
    assert device_notes(result(runs, tmp_path)) == []
    runs["emulated"] = True
    emulated = result(runs, tmp_path)
    (note,) = device_notes(emulated)
    assert note.replace("\n  ", " ") == EMULATED_NOTE
    assert max(len(line) for line in note.splitlines()) <= WIDTH
    heading, *rest = summary_text(emulated).splitlines()
    assert "\n".join(rest).startswith(note + "\n" + emulated.table().splitlines()[0])


def test_simulated_memory_and_utilization_are_said(tmp_path):
    runs = stored_runs(STEADY, steps=50, step_cv=0.05)
    samples = pd.DataFrame({"time": [0.0], "device": [0], "metric": ["memory_used"],
                            "value": [1.0]})
    sampled = SweepResult(runs, samples, name="s", sweep_id="s1",
                          results_path=tmp_path / "r.sqlite", planned_points=9)
    assert device_notes(sampled) == []
    (note,) = device_notes(sampled, simulated=True)
    assert note.replace("\n  ", " ") == SIMULATED_NOTE
    assert device_notes(result(runs, tmp_path), simulated=True) == []  # nothing sampled


def test_columns_make_way_by_rank_until_the_table_fits():
    columns = [Column("name", ["a", "b"], left=True), Column("wide", ["x" * 40] * 2, rank=1),
               Column("wider", ["y" * 50] * 2, rank=2), Column("end", ["1", "22"])]
    kept, left_out = fitted(columns, width=60)
    assert [c.heading for c in kept] == ["name", "wide", "end"]
    assert [c.heading for c in left_out] == ["wider"]
    assert render(kept) == ["name  " + " " * 36 + "wide  end",
                            "a     " + "x" * 40 + "    1",
                            "b     " + "x" * 40 + "   22"]

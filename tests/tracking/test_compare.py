"""nbreplica.compare and ``nbreplica compare``: two stored sweeps side by side."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import nbreplica
from nbreplica.bench.store import ResultsStore, RunRecord
from nbreplica.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from sweep_helpers import STEADY, stored_runs  # noqa: E402


def store(path, name, throughputs, target_ci=None):
    results = ResultsStore(path)
    for row in stored_runs(throughputs, steps=50, step_cv=0.05, name=name, sweep_id=name,
                           target_ci=target_ci).to_dict("records"):
        results.append(RunRecord(**row))


def scaled(throughputs, factor):
    return {point: [rate * factor for rate in rates] for point, rates in throughputs.items()}


@pytest.fixture
def two_sweeps(private_results):
    """"before" (STEADY), then "after": 20% faster on 1 and 2 devices, the same within
    noise on 4, and a point on 8 devices that "before" did not measure."""
    after = {**scaled(STEADY, 1.2), ("split", 4): [3010.0, 3090.0, 2960.0],
             ("split", 8): [4000.0, 4100.0, 3900.0]}
    store(private_results, "before", STEADY)
    store(private_results, "after", after)
    return private_results


def test_compare_sets_two_sweeps_side_by_side_with_the_ratio_and_the_verdict(two_sweeps):
    comparison = nbreplica.compare("before", "after")
    frame = comparison.frame.set_index(["strategy", "devices"])
    assert list(frame.index) == [("single", 1), ("split", 2), ("split", 4), ("split", 8)]
    assert frame.loc[("single", 1), "ratio"] == pytest.approx(1.2)
    assert frame.loc[("split", 2), "ratio"] == pytest.approx(1.2)
    assert list(frame["change"]) == ["faster", "faster", "within intervals", "n/a"]
    assert list(frame["beyond_intervals"].astype(object)) == [True, True, False, pd.NA]
    assert pd.isna(frame.loc[("split", 8), "samples_per_s_a"])
    summary_a = nbreplica.SweepResult.load("before").frame.set_index(["strategy", "devices"])
    for column in ("samples_per_s", "samples_per_s_low", "samples_per_s_high", "speedup"):
        side = column.replace("samples_per_s", "samples_per_s_a") if "samples" in column \
            else "speedup_a"
        assert frame[side].dropna().tolist() == pytest.approx(summary_a[column].tolist())
    assert (comparison.name_a, comparison.name_b) == ("before", "after")


def test_slower_is_said_too(private_results):
    store(private_results, "fast", STEADY)
    store(private_results, "slow", scaled(STEADY, 0.8))
    frame = nbreplica.compare("fast", "slow").frame
    assert set(frame["change"]) == {"slower"} and frame["ratio"].tolist() == pytest.approx(
        [0.8] * 3)


def test_the_verdict_uses_each_sweeps_own_intervals(private_results):
    """3% faster: beyond the intervals of fixed sweeps, within the wider ones adaptive
    sweeps take (at half the error rate, see nbreplica.bench.stats)."""
    store(private_results, "fixed-a", STEADY)
    store(private_results, "fixed-b", scaled(STEADY, 1.03))
    store(private_results, "adaptive-a", STEADY, target_ci=0.1)
    store(private_results, "adaptive-b", scaled(STEADY, 1.03), target_ci=0.1)
    fixed = nbreplica.compare("fixed-a", "fixed-b").frame
    adaptive = nbreplica.compare("adaptive-a", "adaptive-b").frame
    assert fixed.loc[0, "change"] == "faster"
    assert adaptive.loc[0, "change"] == "within intervals"
    assert adaptive.loc[0, "samples_per_s_a_high"] > fixed.loc[0, "samples_per_s_a_high"]


def test_the_compare_command_prints_the_table(two_sweeps, capsys):
    assert main(["compare", "before", "after", "--results", str(two_sweeps)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "samples/s [interval] of sweep A (before) and sweep B (after)"
    assert re.match(r"strategy\s+devices\s+A: before\s+B: after\s+B/A\s+beyond both intervals$",
                    lines[1])
    assert re.match(r"single\s+1\s+1,000 \[975–1,025\]\s+1,200 \[1,171–1,230\]\s+1\.200\s+"
                    r"yes: faster$", lines[2])
    assert re.search(r"1\.0\d\d\s+no$", lines[4])
    assert re.match(r"split\s+8\s+not measured\s+3,999 \[.+\]\s+n/a\s+n/a \(no interval\)$",
                    lines[5])


def test_a_sweep_that_is_not_stored_is_named_with_the_stored_ones(two_sweeps, capsys):
    assert main(["compare", "before", "nope"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("nbreplica compare: error: No sweep called 'nope' in ")
    assert error.rstrip().endswith("it holds 'before', 'after'. Received: name_b='nope'")
    with pytest.raises(LookupError, match=r"Received: name_a='gone'"):
        nbreplica.compare("gone", "after")


def test_without_a_results_file_the_command_says_so(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert main(["compare", "a", "b", "--results", str(missing)]) == 1
    assert f"No results file at {missing}" in capsys.readouterr().err

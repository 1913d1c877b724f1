"""Two stored sweeps side by side: ``nbreplica.compare`` and ``nbreplica compare``.

The check to run after upgrading TensorFlow or changing the model: for every strategy
and device count the two sweeps measured, each one's samples/s with its interval, the
ratio of B's to A's, and whether the difference is beyond both intervals (B's figure
outside A's interval and A's outside B's), as pytest-benchmark's ``compare`` sets runs
side by side. The intervals are each sweep's own (:func:`nbreplica.bench.stats.summarize`
of its stored runs, as its report shows them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from nbreplica.bench import terminal
from nbreplica.bench.result import PrettyPrinter
from nbreplica.bench.stats import summarize
from nbreplica.bench.store import existing_store, stored_runs
from nbreplica.bench.tables import NOT_AVAILABLE

#: The columns of :attr:`SweepComparison.frame`.
COLUMNS = [
    "strategy", "devices",
    "samples_per_s_a", "samples_per_s_a_low", "samples_per_s_a_high",
    "samples_per_s_b", "samples_per_s_b_low", "samples_per_s_b_high",
    "ratio", "beyond_intervals", "change", "speedup_a", "speedup_b",
    "reliable_a", "reliable_b",
]
_FIGURES = ["samples_per_s", "samples_per_s_low", "samples_per_s_high", "speedup", "reliable"]


@dataclass(frozen=True)
class SweepComparison:
    """Sweep B against sweep A, per (strategy, device count).

    Attributes:
        name_a, name_b: the sweeps' names; ``sweep_id_a``, ``sweep_id_b`` their ids.
        frame: one row per strategy and device count measured by either sweep
            (:data:`COLUMNS`): each sweep's samples/s with its interval and speedup,
            ``ratio`` (B's samples/s over A's), ``beyond_intervals`` (B's samples/s
            lies outside A's interval and A's outside B's; missing where either has
            no interval, e.g. one repeat), ``change`` (``"faster"``, ``"slower"``,
            ``"within intervals"`` or ``"n/a"``) and whether each point is reliable.
    """

    name_a: str
    name_b: str
    sweep_id_a: str
    sweep_id_b: str
    frame: pd.DataFrame

    def table(self) -> str:
        """The comparison as a fixed-width text table (what the command line prints)."""
        frame = self.frame
        columns = [
            terminal.Column("strategy", list(frame["strategy"]), left=True),
            terminal.Column("devices", [str(n) for n in frame["devices"]]),
            _figures(f"A: {self.name_a}", frame, "a"),
            _figures(f"B: {self.name_b}", frame, "b"),
            terminal.Column("B/A", [NOT_AVAILABLE if pd.isna(r) else f"{r:.3f}"
                                    for r in frame["ratio"]]),
            terminal.Column("beyond both intervals", [_verdict(row) for row in
                                                      frame.itertuples()], left=True),
        ]
        return "\n".join([f"samples/s [interval] of sweep A ({self.sweep_id_a}) and "
                          f"sweep B ({self.sweep_id_b})", *terminal.render(columns)])

    def __str__(self) -> str:
        return self.table()

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(self.table())


def compare(name_a: str, name_b: str, *,
            results_path: str | os.PathLike[str] | None = None) -> SweepComparison:
    """Set the stored sweeps ``name_a`` (A, e.g. before an upgrade) and ``name_b`` (B,
    after it) side by side per strategy and device count: each one's samples/s with its
    interval, the ratio B/A and whether the difference is beyond both intervals.

    Args:
        name_a, name_b: sweep names or ids (the latest sweep stored under a name).
        results_path: the results file; defaults to ``$NBREPLICA_RESULTS`` or
            ``~/.nbreplica/results.sqlite``.

    Returns:
        A :class:`~nbreplica.bench.compare.SweepComparison`; it prints as a table.

    Raises:
        FileNotFoundError: there is no results file.
        LookupError: no sweep is stored under one of the names; the message lists the
            stored sweeps.
        ResultsStoreError: the file cannot be read.
    """
    store = existing_store(results_path)
    summaries = []
    for argument, name in (("name_a", name_a), ("name_b", name_b)):
        runs = stored_runs(store, name, argument=argument)
        latest = runs["sweep_id"].iloc[-1]
        summaries.append(summarize(runs[runs["sweep_id"] == latest]))
    a, b = summaries
    return SweepComparison(str(a["sweep_name"].iloc[0]), str(b["sweep_name"].iloc[0]),
                           str(a["sweep_id"].iloc[0]), str(b["sweep_id"].iloc[0]),
                           side_by_side(a, b))


def side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """:attr:`SweepComparison.frame` of two sweep summaries (:attr:`SweepResult.frame`)."""
    keys = ["strategy", "devices"]
    frame = a[keys + _FIGURES].merge(b[keys + _FIGURES], on=keys, how="outer",
                                     suffixes=("_a", "_b"), sort=False)
    frame = frame.rename(columns={f"samples_per_s_{end}_{side}": f"samples_per_s_{side}_{end}"
                                  for end in ("low", "high") for side in "ab"})
    frame["ratio"] = frame["samples_per_s_b"] / frame["samples_per_s_a"]
    faster = ((frame["samples_per_s_b"] > frame["samples_per_s_a_high"])
              & (frame["samples_per_s_a"] < frame["samples_per_s_b_low"]))
    slower = ((frame["samples_per_s_b"] < frame["samples_per_s_a_low"])
              & (frame["samples_per_s_a"] > frame["samples_per_s_b_high"]))
    known = frame[[f"samples_per_s_{side}_{end}" for side in "ab"
                   for end in ("low", "high")]].notna().all(axis=1)
    frame["beyond_intervals"] = pd.array(
        [bool(f or s) if k else pd.NA for f, s, k in zip(faster, slower, known)],
        dtype="boolean")
    frame["change"] = [NOT_AVAILABLE if not k else "faster" if f else "slower" if s
                       else "within intervals" for f, s, k in zip(faster, slower, known)]
    return frame.reindex(columns=COLUMNS).reset_index(drop=True)


def _figures(heading: str, frame: pd.DataFrame, side: str) -> terminal.Column:
    cells = []
    for value, low, high, reliable in zip(
            frame[f"samples_per_s_{side}"], frame[f"samples_per_s_{side}_low"],
            frame[f"samples_per_s_{side}_high"], frame[f"reliable_{side}"]):
        if pd.isna(value):
            cells.append("not measured")
            continue
        interval = "" if pd.isna(low) else f" [{low:,.0f}–{high:,.0f}]"
        cells.append(f"{value:,.0f}{interval}{'' if reliable else ' (unreliable)'}")
    return terminal.Column(heading, cells)


def _verdict(row: tuple) -> str:
    if row.change == NOT_AVAILABLE:
        return f"{NOT_AVAILABLE} (no interval)"
    return f"yes: {row.change}" if row.beyond_intervals else "no"

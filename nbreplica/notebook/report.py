"""A sweep's speedup report in a notebook, and finding stored sweeps again."""

from __future__ import annotations

import base64
import html
import io

from IPython.core.error import UsageError

from nbreplica.bench.result import SweepResult
from nbreplica.bench.store import ResultsStore


class SweepReport:
    """The speedup report of a sweep: its scaling figure (speedup with the ideal line,
    efficiency, throughput, with error bars) and its summary table. Shows as HTML in
    a notebook and as the text table elsewhere."""

    def __init__(self, result: SweepResult) -> None:
        self.result = result

    def _heading(self) -> str:
        result = self.result
        stopped = (f" (stopped after {len(result.runs)} of {result.planned_points} points)"
                   if result.interrupted else "")
        return f"Sweep {result.name!r}{stopped}, stored in {result.results_path}"

    def __repr__(self) -> str:
        return f"{self._heading()}\n{self.result.table()}"

    def _repr_html_(self) -> str:
        buffer = io.BytesIO()
        self.result.plot().savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        return (
            f"<div class='nbreplica-report'><b>{html.escape(self._heading())}</b><br>"
            f"<img alt='Scaling figure' src='data:image/png;base64,{image}'>"
            "<pre style='font-family: var(--jp-code-font-family, monospace)'>"
            f"{html.escape(self.result.table())}</pre></div>"
        )


def stored_sweep(name: str | None = None) -> SweepResult:
    """The latest stored sweep called ``name`` (a sweep name or id), or the latest
    stored sweep of all, from the results file (``$NBREPLICA_RESULTS`` or
    ``~/.nbreplica/results.sqlite``).

    Raises:
        UsageError: there is no results file, or no such sweep in it.
    """
    store = ResultsStore()
    if not store.path.exists():
        raise UsageError(
            f"No sweep has been stored yet: there is no results file at {store.path}. "
            f"Run a cell with %%replicate --sweep 1,2,4 first. Received: name={name!r}"
        )
    runs = store.runs(name)
    if runs.empty:
        names = ", ".join(repr(n) for n in dict.fromkeys(store.runs()["sweep_name"]))
        raise UsageError(
            f"No sweep called {name!r} in {store.path}; it holds {names or 'none'}. "
            f"Received: name={name!r}"
        )
    sweep_id = str(runs["sweep_id"].iloc[-1])
    runs = runs[runs["sweep_id"] == sweep_id].reset_index(drop=True)
    return SweepResult(
        runs, store.samples(sweep_id), name=str(runs["sweep_name"].iloc[0]),
        sweep_id=sweep_id, results_path=store.path, planned_points=len(runs),
    )

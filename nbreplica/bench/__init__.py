"""Speedup sweeps: measure, store, summarize, plot and report data-parallel scaling."""

from nbreplica.bench.plots import plot_comparison
from nbreplica.bench.result import SweepInterrupted, SweepResult
from nbreplica.bench.runner import sweep
from nbreplica.bench.store import load_results

__all__ = ["SweepInterrupted", "SweepResult", "load_results", "plot_comparison", "sweep"]

"""Speedup sweeps: measure, store, summarize, plot and report data-parallel scaling.

Only :mod:`~nbreplica.bench.runner` and what it measures with need TensorFlow; the
stored results, their statistics, tables, plots and reports do not.
"""

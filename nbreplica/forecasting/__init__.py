"""Forecasts of how a model's training step scales on real multi-GPU machines.

The step is traced (never run) with its devices assigned as TensorFlow assigns them;
:mod:`~nbreplica.forecasting.traffic` counts the bytes each pair of devices exchanges,
:mod:`~nbreplica.forecasting.flops` the work of each op, and
:mod:`~nbreplica.forecasting.step_model` turns both into step times on a
:class:`~nbreplica.forecasting.hardware.Hardware` (the shipped machines are in
:mod:`~nbreplica.forecasting.catalogue`). :func:`nbreplica.forecast` is the entry point.

The package is ``forecasting`` so that ``nbreplica.forecast`` stays the function:
importing a subpackage sets its name on the parent package.
"""

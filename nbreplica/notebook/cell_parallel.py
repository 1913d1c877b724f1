"""Run a cell body data-parallel: placement, timing and device sampling around it.

The body runs through ``shell.run_cell``, as a cell of its own: its variables land in
the user namespace, its output shows as usual, and an error shows the user's own
traceback. :class:`OuterCell` then lets the ``%%replicate`` cell fail with that same
error, so a notebook's "Run all" stops there as it would for a plain cell.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import keras
import pandas as pd
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from nbreplica.gpus.available import Accelerator
from nbreplica.devices import Sampler
from nbreplica._keras_compat.routed_methods import routed_model_methods
from nbreplica.strategy.placements import placement_for
from nbreplica.notebook.training import FitObserver, FitRecord, TrainingStats
from nbreplica.gpus.chosen import selected_devices, use_devices
from nbreplica.strategy.workers import WorkerProcess

#: Seconds between device samples with ``--monitor``.
SAMPLE_INTERVAL = 0.25


@dataclass(frozen=True)
class DeviceUsage:
    """One device's peak memory (bytes) and mean utilization (percent) during a run;
    ``None`` where the device reports no such counter (emulated devices)."""

    device: Accelerator
    peak_memory_bytes: float | None
    mean_utilization: float | None


@dataclass(frozen=True)
class CellRun:
    """One run of a cell body on some devices, and what it measured."""

    result: ExecutionResult
    strategy: str
    """``"split"``, ``"mirrored"``, ``"single"`` (one device, run plainly) or
    ``"multiworker"`` (worker processes, in a sweep)."""
    devices: tuple[Accelerator, ...] | tuple[WorkerProcess, ...]
    started: float
    """``time.monotonic()`` when the body started."""
    wall_s: float
    training: TrainingStats | None
    usage: tuple[DeviceUsage, ...] | None
    """Per device, with ``--monitor``; else ``None``."""
    samples: pd.DataFrame
    """The device samples (time in seconds since ``started``); empty unless monitored."""
    fits: tuple[FitRecord, ...] = ()
    """The body's ``fit`` calls, in order: each with its model and batch layout."""

    @property
    def ran(self) -> bool:
        """Whether the body started to run (``False``: it did not compile)."""
        return self.result.error_before_exec is None

    @property
    def error(self) -> BaseException | None:
        """What the body raised (or its syntax error), if anything."""
        return self.result.error_before_exec or self.result.error_in_exec


class OuterCell:
    """The ``%%replicate`` cell itself, as the shell is executing it."""

    def __init__(self, shell: InteractiveShell) -> None:
        # While a cell runs, the display hook holds its ExecutionResult; ipykernel
        # replies "error" to the front end when that result carries an error.
        self._result = shell.displayhook.exec_result

    def fail(self, error: BaseException) -> None:
        """Mark the cell as failed with ``error`` (already shown to the user)."""
        if self._result is not None:
            self._result.error_in_exec = error


def run_parallel(shell: InteractiveShell, body: str, devices: Sequence[Accelerator],
                 strategy: str, *, monitor: bool = False,
                 shares: str | Sequence[float] | None = None,
                 callbacks: Callable[[], list[keras.callbacks.Callback]] | None = None,
                 ) -> CellRun:
    """Run ``body`` in ``shell`` data-parallel over ``devices`` with ``strategy``.

    For the body's duration ``nbreplica.selected_devices()`` is ``devices``, Keras
    model calls are routed (see :mod:`nbreplica.strategy.placements`), every ``fit`` is
    timed (and gets the new ``callbacks()`` too), and with ``monitor`` the devices are
    sampled; all of it is undone however the body ends. ``shares`` is how ``"split"``
    splits each batch (as ``replicate`` takes it).
    """
    placed = placement_for(strategy, devices,
                           replicate_options=None if shares is None else {"shares": shares})
    observer = FitObserver(callbacks)
    sampler = Sampler(interval=SAMPLE_INTERVAL)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_selected(devices))
        stack.enter_context(routed_model_methods(placed.route, observer.observe))
        stack.enter_context(placed.scope())
        if monitor:
            stack.enter_context(sampler)
        started = time.monotonic()
        result = _run_nested(shell, body)
        wall_s = time.monotonic() - started
    return CellRun(
        result=result,
        strategy=placed.name,
        devices=tuple(devices),
        started=started,
        wall_s=wall_s,
        training=observer.stats(),
        usage=_usage(sampler, devices) if monitor else None,
        samples=sampler.to_frame(),
        fits=tuple(observer.records),
    )


def _run_nested(shell: InteractiveShell, body: str) -> ExecutionResult:
    outer = shell.displayhook.exec_result
    try:
        return shell.run_cell(body)
    finally:
        # The nested run clears the hook; the outer cell's value and status live there.
        shell.displayhook.exec_result = outer


@contextlib.contextmanager
def _selected(devices: Sequence[Accelerator]) -> Iterator[None]:
    previous = selected_devices()
    use_devices([device.index for device in devices])
    try:
        yield
    finally:
        use_devices(previous)


def _usage(sampler: Sampler, devices: Sequence[Accelerator]) -> tuple[DeviceUsage, ...]:
    peaks = sampler.peak_memory()
    utilization = sampler.mean_utilization()
    return tuple(
        DeviceUsage(device, _float(peaks.get(device.index)),
                    _float(utilization.get(device.index)))
        for device in devices
    )


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)

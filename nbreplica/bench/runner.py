"""``sweep``: measure a model's training speed over 1, 2, 4, 8 devices."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from nbreplica._checks import is_whole
from nbreplica.devices.shares import check_share_name, normalised
from nbreplica.gpus.replicas import chosen_devices
from nbreplica.bench.data import SweepData
from nbreplica.bench import defaults
from nbreplica.bench.engine import Measured, SweepOutcome, SweepPlan, run_sweep
from nbreplica.bench.measure import ModelFn, Point, PointSettings, measure_point
from nbreplica.bench.multiworker import measure_across_workers, point_devices
from nbreplica.bench.progress import Progress, Status, make_progress, titled
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.reliability import calibrated_steps
from nbreplica.bench.result import SweepInterrupted, SweepResult
from nbreplica.bench.schedule import Kind, Precision, Schedule
from nbreplica.bench.store import ResultsStore
from nbreplica.bench.to_mlflow import log_sweep
from nbreplica.forecasting.api import STRATEGIES as FORECAST_STRATEGIES
from nbreplica.forecasting.api import forecast as forecast_model
from nbreplica.forecasting.catalogue import resolve_hardware
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.report import Forecast
from nbreplica.forecasting.saved import forecast_to_json
from nbreplica.strategy.names import BASELINE, MULTIWORKER, STRATEGIES
from nbreplica.tracking.mlflow_runs import require_mlflow

SCALINGS = ("strong", "weak")


def sweep(
    model_fn: ModelFn,
    x: Any,
    y: Any = None,
    *,
    devices: Iterable[int] = (1, 2, 4, 8),
    batch_size: int = 256,
    scaling: str = "strong",
    strategy: str | Sequence[str] = "split",
    repeats: int = defaults.REPEATS,
    steps: int | None = None,
    warmup_steps: int = defaults.WARMUP_STEPS,
    target_ci: float | None = defaults.TARGET_CI,
    budget: float | None = defaults.BUDGET_S,
    name: str | None = None,
    results_path: str | os.PathLike[str] | None = None,
    efficiency_threshold: float = defaults.EFFICIENCY_THRESHOLD,
    confidence: float = defaults.CONFIDENCE,
    sample_interval: float = 0.25,
    replicate_options: Mapping[str, Any] | None = None,
    cross_device_ops: tf.distribute.CrossDeviceOps | None = None,
    progress: bool | Progress | None = None,
    forecast: Hardware | str | None = None,
    shares: str | Sequence[float] | None = None,
    mlflow: bool = False,
) -> SweepResult:
    """Measure how training speed scales with the number of devices.

    For each repeat, the plain model on one device (the baseline, strategy
    ``"single"``) and then ``"split"`` on each larger device count are trained for
    ``warmup_steps + steps`` steps, interleaved so that slow drift of the machine
    hits every point alike; ``"mirrored"`` points follow, repeat by repeat, once
    every other point is measured (a trained ``MirroredStrategy`` leaves threads
    behind that slow later ``replicate`` steps), then ``"multiworker"`` points.
    Every point's speedup is taken against its repeat's baseline. Every point builds
    a fresh model with ``model_fn`` and is appended to the results file as soon as it
    is measured.

    The sweep is adaptive by default: after ``repeats`` repeats of every point it
    keeps adding repeats, each with its own baseline, to the points whose speedup
    interval is still wider than ``target_ci``, until every point meets it or the
    ``budget`` would be exceeded. Points left wider are marked in the table, the HTML
    and the plot, with the width they reached. See :mod:`nbreplica.bench.schedule`.

    Args:
        model_fn: builds and compiles a fresh ``keras.Model`` (called once per point,
            inside the ``MirroredStrategy`` scope for ``"mirrored"``, in every worker
            for ``"multiworker"``, which therefore needs a picklable ``model_fn``).
        x, y: training data as ``Model.fit`` takes arrays (``x`` a NumPy array, or a
            list or dict of them), or ``x`` a ``tf.data.Dataset`` of batches and
            ``y=None``; it is re-batched for every point and repeated as needed.
            ``"multiworker"`` needs arrays (they are sent to its workers).
        devices: device counts to measure. 1 is always measured (it is the baseline)
            and is added when missing. Counts take the first devices of the picker's
            selection (``nbreplica.use_devices``) if one is set, else of all devices.
        batch_size: with ``scaling="strong"`` the global batch, the same at every
            device count; with ``"weak"`` the batch per device (the global batch
            grows with the device count).
        scaling: ``"strong"`` or ``"weak"``.
        strategy: ``"split"`` (:func:`nbreplica.replicate`), ``"mirrored"``
            (``tf.distribute.MirroredStrategy`` over the same devices),
            ``"multiworker"`` (as many worker processes of this machine as the device
            count, 1 included, fresh ones for every point, trained under
            ``MultiWorkerMirroredStrategy``: see :func:`nbreplica.cluster.launch`;
            their results are labelled "workers on one machine"), or several.
        repeats: how many times every point is measured (>= 2 for intervals; fewer
            than 3 mark the figures unreliable); an adaptive sweep adds repeats to
            this first round.
        steps: measured steps per point, after ``warmup_steps`` unmeasured ones
            (the first of which includes tracing, reported as ``first_step_s``).
            ``None`` calibrates them from an unrecorded first baseline: enough for
            the step times' spread and for the timed part to last
            :data:`~nbreplica.bench.reliability.MIN_TIMED_SECONDS`. Too few for the
            step times' spread mark the figures unreliable, and the summary's
            ``steps_needed`` says how many would do.
        target_ci: the widest speedup interval accepted, as the interval's full
            width relative to the median (0.10: ±5%), at ``confidence``; ``None``
            measures exactly ``repeats`` repeats.
        budget: seconds an adaptive sweep may take: no further repeat starts that
            is expected to end after it (the first ``repeats`` repeats always run).
            Ignored when ``target_ci`` is ``None``.
        name: a name to find the sweep by; defaults to
            ``"<model name>-<scaling>-b<batch_size>"``.
        results_path: the results file; defaults to ``$NBREPLICA_RESULTS`` or
            ``~/.nbreplica/results.sqlite``.
        efficiency_threshold: the recommended device count is the largest whose
            median efficiency is at least this.
        confidence: the coverage of the intervals (Student-t intervals of the
            repeats' mean log, see :mod:`nbreplica.bench.stats`), also the level
            of the step-count estimate behind unreliable figures.
        sample_interval: seconds between device samples (memory, utilization).
        replicate_options: keyword arguments for ``replicate`` (``cpu_merge``,
            ``cpu_relocation``).
        cross_device_ops: gradient reduction of ``MirroredStrategy``; defaults to
            ``tf.distribute.ReductionToOneDevice()``. TensorFlow's own default,
            collective all-reduce, cannot serve strategies over different device
            counts in one process (their collective groups collide), so do not pass
            it here.
        progress: ``None``/``True`` shows a tqdm progress bar (a widget in a
            notebook, a text bar elsewhere) with the current point and the time
            left, ``False`` nothing; or a custom ``Progress``.
        forecast: a machine (a :class:`nbreplica.Hardware` or a name of
            :func:`nbreplica.hardware_catalogue`): once measured, the sweep's model is
            forecast on it (:func:`nbreplica.forecast`, at the sweep's batch,
            scaling, device counts up to the machine's GPUs, its first strategy
            of ``"split"``/``"mirrored"`` and ``replicate_options``), and the
            forecast shows beside the measurements (:attr:`SweepResult.forecast`).
        shares: how ``"split"`` points split each batch, as :func:`nbreplica.replicate`
            takes it: ``"even"``, ``"auto"`` (calibrated for every point), ``"memory"``,
            or one share per device of the selection (at least as many as the largest
            count), of which a point on n devices uses the first n. Each run stores
            the split it used (``shares``) and the report shows it.
        mlflow: log the sweep to MLflow once it ends (interrupted too): a parent run
            with one child run per point, the speedup table and the report as
            artifacts, tagged ``emulated`` where it was (see
            :mod:`nbreplica.bench.to_mlflow`; needs ``nbreplica[mlflow]``).

    Returns:
        A :class:`SweepResult`.

    Raises:
        ValueError: a bad argument (device counts, data smaller than one batch, ...).
        SweepError: ``model_fn`` raised or did not return a compiled model.
        ResultsStoreError: the results file cannot be used (a directory, a full disk,
            a damaged file); raised before anything is measured, or when a run cannot
            be stored.
        SweepInterrupted: the sweep was interrupted; the points measured so far are
            stored and in its ``result``.
        ImportError: ``mlflow=True`` without MLflow installed (before anything is
            measured).

    Every point trains without XLA (``jit_compile=False``), whatever ``model_fn``
    asked for: ``replicate`` cannot use it, and the speedups then measure the
    parallelism alone.

    .. warning::
        Emulated devices are logical devices of one CPU: they share its cores, so
        their speedups say how the step is split, not what GPUs would gain.
    """
    _check_model_fn(model_fn)
    available, strategies = chosen_devices(), _strategies(strategy)
    # Worker processes need no devices of this process.
    counts = _device_counts(devices, len(available) if set(strategies) - {MULTIWORKER} else None)
    _check_settings(scaling=scaling, batch_size=batch_size, repeats=repeats,
                    warmup_steps=warmup_steps, efficiency_threshold=efficiency_threshold,
                    confidence=confidence, sample_interval=sample_interval, forecast=forecast,
                    mlflow=mlflow, **({} if steps is None else {"steps": steps}))
    precision = Precision.of(repeats, target_ci, budget)

    def global_batch(count: int) -> int:
        return batch_size if scaling == "strong" else batch_size * count

    def make_point(strategy: str, count: int, repeat: int) -> Point:
        return Point(strategy, point_devices(strategy, count, available), repeat,
                     global_batch(count))

    data = _checked_data(x, y, strategies, global_batch(max(counts)))
    settings = PointSettings(steps or CALIBRATION_STEPS, warmup_steps,
                             _replicate_options(replicate_options, shares, max(counts)),
                             cross_device_ops, sample_interval, clock_origin=time.monotonic())
    plan = SweepPlan(_phases(counts, strategies), precision, make_point,
                     efficiency_threshold, confidence)
    recorder = Recorder(ResultsStore(results_path), name, scaling, precision.target_ci)
    reporter = make_progress(progress)

    def calibrate(schedule: Schedule) -> None:
        nonlocal settings
        reporter.update(Status(0, schedule.planned, CALIBRATING, None))
        settings = _calibrated(settings, make_point(BASELINE, 1, 0), model_fn, data,
                               confidence)

    def measure(point: Point) -> Measured:
        measure = measure_across_workers if point.strategy == MULTIWORKER else measure_point
        return Measured(point, measure(point, model_fn, data, settings),
                        steps=settings.steps, warmup_steps=warmup_steps)

    outcome = run_sweep(plan, recorder, measure, reporter, titled(
        f"Sweep of {len(counts)} device counts", available), prepare=None if steps else calibrate)
    return _finished(outcome, forecast, mlflow, lambda machine: _forecast(
        model_fn(), machine, counts, batch_size, scaling, strategies, replicate_options))


MLFLOW_CALL = "nbreplica.sweep(..., mlflow=True)"


def _finished(outcome: SweepOutcome, hardware: Hardware | str | None, to_mlflow: bool,
              forecast_on: Callable[[Hardware], Forecast]) -> SweepResult:
    """The sweep's result, with its forecast on ``hardware`` if any, logged to MLflow
    if ``to_mlflow``.

    Raises:
        SweepInterrupted: the sweep was interrupted (and nothing is forecast).
    """
    if outcome.error is not None:
        if to_mlflow:
            log_sweep(outcome.result, MLFLOW_CALL)
        raise SweepInterrupted(outcome.result) from outcome.error
    if hardware is not None:
        result = outcome.result
        result.forecast = forecast_on(resolve_hardware(hardware))
        ResultsStore(result.results_path).put_forecast(result.sweep_id,
                                                       forecast_to_json(result.forecast))
    if to_mlflow:
        log_sweep(outcome.result, MLFLOW_CALL)
    return outcome.result


def _forecast(model: Any, machine: Hardware, counts: Sequence[int], batch_size: int,
              scaling: str, strategies: Sequence[str],
              replicate_options: Mapping[str, Any] | None) -> Forecast:
    """The forecast of ``model`` as the sweep trained it, on ``machine``'s GPU counts
    among ``counts``."""
    strategy = next((s for s in strategies if s in FORECAST_STRATEGIES), "split")
    fits = [n for n in counts if n <= machine.gpus and (scaling == "weak" or n <= batch_size)]
    options = {k: v for k, v in (replicate_options or {}).items()
               if k in ("cpu_merge", "cpu_relocation")}
    return forecast_model(model, batch_size, devices=fits, hardware=machine,
                          strategy=strategy, scaling=scaling, **options)


#: Timed steps of the unrecorded baseline that calibrates ``steps=None``.
CALIBRATION_STEPS = 20
CALIBRATING = "calibrating the timed steps on 1 device"


def _calibrated(settings: PointSettings, point: Point, model_fn: ModelFn, data: SweepData,
                confidence: float) -> PointSettings:
    """``settings`` with the timed steps that one unrecorded baseline calls for (see
    :func:`nbreplica.bench.reliability.calibrated_steps`)."""
    measurement = measure_point(point, model_fn, data, settings)
    mean_step_s = point.global_batch_size / measurement.samples_per_s
    return dataclasses.replace(settings, steps=calibrated_steps(
        mean_step_s, measurement.step_time_sd_s / mean_step_s, confidence))


def _replicate_options(options: Mapping[str, Any] | None, shares: Any,
                       largest: int) -> dict[str, Any]:
    """``replicate_options`` with ``shares``, checked before anything is measured."""
    chosen = dict(options or {})
    if shares is None:
        return chosen
    if isinstance(shares, str):
        check_share_name(shares)
    else:
        count = len(shares) if isinstance(shares, Sequence) else largest
        normalised(shares, count)  # refuses a non-sequence and bad numbers alike
        if count < largest:
            raise ValueError(
                f"shares needs one number per device of the largest point ({largest}). "
                f"Received: shares={shares!r}")
    chosen["shares"] = shares
    return chosen


def _check_model_fn(model_fn: ModelFn) -> None:
    if not callable(model_fn):
        raise TypeError(
            "model_fn must be a function that builds and compiles a fresh Keras model. "
            f"Received: model_fn={model_fn!r}"
        )


def _checked_data(x: Any, y: Any, strategies: tuple[str, ...], largest_batch: int) -> SweepData:
    data = SweepData(x, y)
    if MULTIWORKER in strategies and data.arrays is None:
        raise ValueError(
            "strategy 'multiworker' trains in worker processes, which need the data as "
            "arrays: a tf.data.Dataset cannot be sent to them. Received: x of type "
            f"{type(x).__name__}"
        )
    data.check_covers(largest_batch)
    return data


def _device_counts(devices: Iterable[int], available: int | None) -> list[int]:
    try:
        requested = list(devices)
    except TypeError:
        raise TypeError(
            f"devices must be a sequence of device counts, e.g. (1, 2, 4, 8). "
            f"Received: devices={devices!r}"
        ) from None
    if not requested or any(not is_whole(n) or n < 1 for n in requested):
        raise ValueError(
            "devices must be whole device counts >= 1, e.g. (1, 2, 4, 8). "
            f"Received: devices={tuple(requested)!r}"
        )
    if len(set(requested)) != len(requested):
        raise ValueError(
            f"devices must not repeat a device count. Received: devices={tuple(requested)!r}"
        )
    if available is not None and max(requested) > available:
        raise ValueError(
            f"devices asks for {max(requested)} devices, but only {available} are "
            f"available (all devices, or the selection made with use_devices). "
            f"Received: devices={tuple(requested)!r}"
        )
    return sorted({1, *(int(n) for n in requested)})


def _strategies(strategy: str | Sequence[str]) -> tuple[str, ...]:
    chosen = (strategy,) if isinstance(strategy, str) else tuple(strategy)
    if not chosen or any(s not in STRATEGIES for s in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"strategy must be one of {STRATEGIES} or a sequence of distinct ones. "
            f"Received: strategy={strategy!r}"
        )
    return chosen


def _check_settings(*, scaling: str, efficiency_threshold: float, confidence: float,
                    sample_interval: float, forecast: Hardware | str | None, mlflow: bool,
                    **counts: int) -> None:
    if forecast is not None:
        resolve_hardware(forecast)  # an unknown machine fails before anything is measured
    if mlflow:
        require_mlflow(MLFLOW_CALL)  # so does a missing MLflow
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}. Received: scaling={scaling!r}")
    for label, value in counts.items():
        if not is_whole(value) or value < 1:
            raise ValueError(
                f"{label} must be a whole number >= 1. Received: {label}={value!r}"
            )
    if not 0 < efficiency_threshold <= 1:
        raise ValueError(
            "efficiency_threshold must lie in (0, 1]. "
            f"Received: efficiency_threshold={efficiency_threshold!r}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1). Received: confidence={confidence!r}")
    if not sample_interval > 0:
        raise ValueError(
            f"sample_interval must be > 0 seconds. Received: sample_interval={sample_interval!r}"
        )


def _phases(counts: list[int], strategies: tuple[str, ...]) -> list[list[Kind]]:
    """The kinds of point each phase measures: ``"split"`` first, then ``"mirrored"``,
    then ``"multiworker"``, whose points measure one worker too.

    Once a ``MirroredStrategy`` has trained, its distributed input's per-device threads
    stay in the process and slow every later multi-device step of ``replicate``
    (about 10% at 4 and 8 emulated devices), but not the one-device baseline.
    """
    return [[(strategy, count) for count in (counts if strategy == MULTIWORKER
                                             else counts[1:])]
            for strategy in STRATEGIES if strategy in strategies]


"""A sweep in MLflow: ``nbreplica.sweep(..., mlflow=True)``, ``nbreplica sweep
--mlflow`` and ``%%replicate --sweep ... --mlflow``.

One parent run for the sweep (named after it; nested under the active run, if any)
holds its settings as parameters, each strategy's recommended device count as a
metric, and the report as artifacts: the speedup table (``speedup_table.txt``), and
what :meth:`SweepResult.save` writes (``report.html``, ``scaling.png``, CSVs). One child
run per point (strategy, device count) holds its devices, strategy and batch as
parameters and its samples/s, speedup and efficiency, each with its interval, as
metrics. Every run is tagged ``emulated`` (``"true"`` where emulated devices were
measured) and carries the sweep's id and results file.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

import pandas as pd

from nbreplica.bench.result import SweepResult
from nbreplica.tracking.mlflow_runs import require_mlflow

#: The summary's figures each child run logs as metrics (those known).
POINT_METRICS = (
    "samples_per_s", "samples_per_s_low", "samples_per_s_high",
    "speedup", "speedup_low", "speedup_high",
    "efficiency", "efficiency_low", "efficiency_high", "interval_width",
    "step_time_p50_s", "step_time_p90_s", "first_step_s",
    "peak_memory_bytes", "mean_utilization",
)
#: The summary's columns each child run logs as parameters.
POINT_PARAMS = ("strategy", "devices", "global_batch_size", "per_device_batch_size",
                "repeats", "timed_steps", "reliable", "unreliable_reason")


def log_sweep(result: SweepResult, received: str) -> str:
    """Log ``result`` to MLflow (module docstring); returns the parent run's id.

    ``received`` names what asked for it, for the error without MLflow.

    Raises:
        ImportError: MLflow is not installed.
    """
    mlflow = require_mlflow(received)
    tags = _tags(result)
    with mlflow.start_run(run_name=result.name, nested=mlflow.active_run() is not None,
                          tags=tags) as parent:
        mlflow.log_params(_sweep_params(result))
        mlflow.log_metrics({f"recommended_devices_{strategy}": count
                            for strategy, count in result.recommended_devices.items()
                            if count is not None})
        for row in result.frame.to_dict("records"):
            with mlflow.start_run(run_name=f"{row['strategy']} on {row['devices']}",
                                  nested=True, tags=tags):
                mlflow.log_params({name: row[name] for name in POINT_PARAMS
                                   if not _missing(row[name])})
                mlflow.log_metrics({name: float(row[name]) for name in POINT_METRICS
                                    if not _missing(row[name])})
        if not result.runs.empty:
            with tempfile.TemporaryDirectory() as folder:
                result.save(folder)
                mlflow.log_artifacts(folder)
            mlflow.log_text(result.table(), "speedup_table.txt")
        return str(parent.info.run_id)


def _tags(result: SweepResult) -> dict[str, str]:
    return {
        "emulated": str(bool(result.runs["emulated"].astype(bool).any())).lower(),
        "sweep_id": result.sweep_id,
        "results_path": str(result.results_path),
        "interrupted": str(result.interrupted).lower(),
    }


def _sweep_params(result: SweepResult) -> dict[str, Any]:
    frame = result.frame
    first = frame.iloc[0] if len(frame) else pd.Series(dtype=object)
    params = {
        "sweep_name": result.name,
        "strategies": ",".join(dict.fromkeys(frame["strategy"])),
        "device_counts": ",".join(str(n) for n in sorted(set(frame["devices"]))),
        "confidence": result.confidence,
        "efficiency_threshold": result.efficiency_threshold,
        "points": len(result.runs),
    }
    for column in ("model", "scaling", "global_batch_size", "host", "tensorflow_version",
                   "keras_version", "target_ci"):
        if column in first and not _missing(first[column]):
            params[column] = first[column]
    return params


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))

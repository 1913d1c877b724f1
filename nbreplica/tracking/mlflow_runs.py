"""GPU metrics into an MLflow run, and MLflow itself, imported when first needed.

MLflow is optional: ``python3 -m pip install 'nbreplica[mlflow]'`` installs
``mlflow-skinny`` with the SQLite store it uses locally (its default tracking URI is
``sqlite:///mlflow.db``). Where to log is MLflow's own configuration:
``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME`` or ``mlflow.set_experiment``, and
the active run (``mlflow.start_run``, or ``MLFLOW_RUN_ID`` in a worker's environment).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from nbreplica.tracking.series import Point

EXTRA = "python3 -m pip install 'nbreplica[mlflow]'"
#: MLflow takes at most this many metrics in one ``log_batch`` call.
BATCH_LIMIT = 1000


def require_mlflow(received: str) -> ModuleType:
    """The ``mlflow`` module; ``received`` is what asked for it, e.g.
    ``"GpuMonitor(mlflow=True)"``.

    Raises:
        ImportError: MLflow is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module("mlflow")
    except ImportError as error:
        raise ImportError(
            f"{received} logs to MLflow, which is not installed ({error}). Install it "
            f"with: {EXTRA}. Received: {received}"
        ) from error


class RunWriter:
    """Logs :class:`~nbreplica.tracking.series.Point` values to one MLflow run, in
    batches on :meth:`flush`, from any thread.

    The run is the active one of the thread that creates the writer; with none active,
    a new run named ``run_name`` in the current experiment, which :meth:`close` ends.
    """

    def __init__(self, run_name: str, received: str) -> None:
        mlflow = require_mlflow(received)
        self._client = mlflow.MlflowClient()
        self._metric = mlflow.entities.Metric
        active = mlflow.active_run()
        self.started = active is None
        if active is None:
            from mlflow.tracking.fluent import _get_experiment_id

            # Made through the client, not mlflow.start_run: the run must not stay
            # active in the training thread if another thread has to end it.
            active = self._client.create_run(_get_experiment_id(), run_name=run_name)
        self.run_id: str = active.info.run_id
        self._pending: list[Point] = []

    def write(self, points: Sequence[Point]) -> None:
        """Queue ``points``, each at its step and with its time."""
        self._pending.extend(points)

    def flush(self) -> None:
        """Log what is queued."""
        pending, self._pending = self._pending, []
        metrics = [self._metric(p.name, p.value, int(p.wall_time * 1000), p.step)
                   for p in pending]
        for start in range(0, len(metrics), BATCH_LIMIT):
            self._client.log_batch(self.run_id, metrics=metrics[start:start + BATCH_LIMIT])

    def close(self, *, interrupted: bool = False) -> None:
        """Log what is queued; end the run if this writer started it (``KILLED`` when
        the training was ``interrupted``, else ``FINISHED``)."""
        self.flush()
        if self.started:
            self._client.set_terminated(self.run_id, "KILLED" if interrupted else "FINISHED")

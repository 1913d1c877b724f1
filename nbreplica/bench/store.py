"""The results store: one SQLite file that every measured sweep point is appended to.

Each point is committed the moment it is measured, so an interrupted sweep or a dead
kernel loses nothing already measured. Several processes may write at once: the file
runs in WAL mode and writers wait (busy timeout) instead of failing on a lock. A file
that cannot be used (a directory, a full disk, a damaged file) raises a
:class:`~nbreplica.ResultsStoreError` that names it and says why.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

from nbreplica.bench.store_errors import check_usable, translated
from nbreplica.bench.timing import StepTiming

RESULTS_ENV_VAR = "NBREPLICA_RESULTS"
_BUSY_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class RunRecord(StepTiming):
    """One measured point of a sweep, (strategy, device count, repeat): its timing
    (the :class:`~nbreplica.bench.timing.StepTiming` fields) and what it ran on.

    ``steps`` counts the timed steps (after ``warmup_steps`` untimed ones): with
    ``step_time_sd_s`` it tells how precise the point's throughput is.
    """

    step_time_sd_s: float | None  # type: ignore[assignment]
    """Spread of the timed steps' durations; NULL with one timed step, and in files
    written before it was recorded."""
    sweep_id: str
    sweep_name: str
    strategy: str
    scaling: str
    devices: int
    repeat: int
    global_batch_size: int
    per_device_batch_size: float
    steps: int
    warmup_steps: int
    speedup: float
    efficiency: float
    peak_memory_bytes: float | None
    mean_utilization: float | None
    device_metrics: str
    device_names: str
    emulated: bool
    host: str
    tensorflow_version: str
    keras_version: str
    timestamp: str
    target_ci: float | None = None
    """The speedup interval width an adaptive sweep aimed at; NULL for fixed sweeps
    and in files written before sweeps were adaptive."""
    shares: str | None = None
    """How each batch was split over the devices (``ReplicatedModel.split``, e.g.
    ``"given 50% · 25% · 25%"``); NULL for unsplit points and in older files."""


RUN_COLUMNS = [field.name for field in dataclasses.fields(RunRecord)]
SAMPLE_COLUMNS = ["sweep_id", "strategy", "devices", "repeat", "time", "device",
                  "metric", "value"]

_SQL_TYPES = {int: "INTEGER", float: "REAL", bool: "INTEGER", str: "TEXT"}


def _column_type(annotation: str) -> str:
    base = annotation.split("|")[0].strip()
    return _SQL_TYPES[{"int": int, "float": float, "bool": bool, "str": str}[base]]


_RUN_SCHEMA = {
    field.name: _column_type(str(field.type)) for field in dataclasses.fields(RunRecord)
}
_SAMPLE_SCHEMA = {
    "sweep_id": "TEXT", "strategy": "TEXT", "devices": "INTEGER", "repeat": "INTEGER",
    "time": "REAL", "device": "TEXT", "metric": "TEXT", "value": "REAL",
}
#: A sweep's forecast (``sweep(..., forecast=HARDWARE)``) as JSON text; files written
#: before forecasts were stored get the table, empty, when next opened.
_FORECAST_SCHEMA = {"sweep_id": "TEXT", "forecast": "TEXT"}


def default_results_path() -> Path:
    """``$NBREPLICA_RESULTS`` if set, else ``~/.nbreplica/results.sqlite``."""
    configured = os.environ.get(RESULTS_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".nbreplica" / "results.sqlite"


class ResultsStore:
    """Append-only access to one results file (created on first use).

    Every call opens its own short-lived connection, so a store object can be kept in
    a notebook for a whole session and shared by threads without holding a lock. Every
    call raises :class:`~nbreplica.ResultsStoreError` when the file cannot be used.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_results_path()
        self._given = path
        self._ready = False

    @property
    def received(self) -> str:
        """How the caller named the file, as an error message's ``Received:`` part."""
        if self._given is not None:
            return f"results_path={self._given!r}"
        configured = os.environ.get(RESULTS_ENV_VAR, "").strip()
        return (f"results_path=None, ${RESULTS_ENV_VAR}={configured!r}" if configured
                else f"results_path=None (the default file, {self.path})")

    def prepare(self) -> None:
        """Make sure runs can be appended: the path is no directory, its disk is not
        full, and the file is a results file, or can be created (it is not created yet).

        Raises:
            ResultsStoreError: it is not so; the message says what to do.
        """
        check_usable(self.path, self.received)
        if self.path.exists():
            with translated(self.path, self.received), closing(self._connect()):
                pass

    def append(self, record: RunRecord, samples: pd.DataFrame | None = None) -> None:
        """Commit one run, and the device samples taken while it ran, atomically.

        ``samples`` is tidy (time, device, metric, value); it is stored with the
        run's sweep id, strategy, device count and repeat.
        """
        row = dataclasses.astuple(record)
        with translated(self.path, self.received), closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                row,
            )
            if samples is not None and not samples.empty:
                key = (record.sweep_id, record.strategy, record.devices, record.repeat)
                connection.executemany(
                    f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (*key, float(t), str(device), str(metric), _float_or_none(value))
                        for t, device, metric, value in samples[
                            ["time", "device", "metric", "value"]
                        ].itertuples(index=False)
                    ],
                )
            connection.execute("COMMIT")

    def put_forecast(self, sweep_id: str, forecast: str) -> None:
        """Keep ``forecast`` (JSON text) as the forecast of sweep ``sweep_id``."""
        with translated(self.path, self.received), closing(self._connect()) as connection:
            connection.execute("INSERT INTO forecasts (sweep_id, forecast) VALUES (?, ?)",
                               (sweep_id, forecast))

    def forecast(self, sweep_id: str) -> str | None:
        """The forecast last kept for sweep ``sweep_id`` (JSON text), or ``None``."""
        with translated(self.path, self.received), closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT forecast FROM forecasts WHERE sweep_id = ? ORDER BY rowid DESC LIMIT 1",
                (sweep_id,)).fetchone()
        return None if row is None else str(row[0])

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """Every stored run, oldest first; ``sweep`` keeps one sweep (name or id)."""
        frame = self._select("runs", RUN_COLUMNS, sweep)
        frame["emulated"] = frame["emulated"].astype(bool)
        return frame

    def samples(self, sweep: str | None = None) -> pd.DataFrame:
        """The device samples stored with the runs (tidy), filtered like :meth:`runs`."""
        return self._select("samples", SAMPLE_COLUMNS, sweep)

    def _select(self, table: str, columns: list[str], sweep: str | None) -> pd.DataFrame:
        query = f"SELECT {', '.join(columns)} FROM {table}"
        parameters: tuple[str, ...] = ()
        if sweep is not None:
            # Sample rows carry only the sweep id; a sweep name is resolved through runs.
            query += (
                " WHERE sweep_id = ? OR sweep_id IN "
                "(SELECT sweep_id FROM runs WHERE sweep_name = ?)"
            )
            parameters = (sweep, sweep)
        with translated(self.path, self.received), closing(self._connect()) as connection:
            frame = pd.read_sql_query(query + " ORDER BY rowid", connection, params=parameters)
        return frame.reindex(columns=columns)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None
        )
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        if not self._ready:
            self._create_schema(connection)
            self._ready = True
        return connection

    @staticmethod
    def _create_schema(connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        for table, schema in (("runs", _RUN_SCHEMA), ("samples", _SAMPLE_SCHEMA),
                              ("forecasts", _FORECAST_SCHEMA)):
            columns = ", ".join(f'"{name}" {kind}' for name, kind in schema.items())
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            # A file written by an older nbreplica lacks newer columns: add them.
            existing = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            for name, kind in schema.items():
                if name not in existing:
                    connection.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')
        connection.execute("COMMIT")


def _float_or_none(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN is stored as NULL


def load_results(
    sweep: str | None = None, *, results_path: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Every stored sweep point (one row per strategy, device count and repeat).

    Args:
        sweep: keep only this sweep, given by its name or its id.
        results_path: the results file; defaults to ``$NBREPLICA_RESULTS`` or
            ``~/.nbreplica/results.sqlite``.

    Pass the frame to :func:`nbreplica.plot_comparison` to put several sweeps on one
    chart, or to :func:`nbreplica.bench.stats.summarize` for medians and intervals.

    Raises:
        FileNotFoundError: there is no results file.
        LookupError: the file holds no sweep called ``sweep``.
        ResultsStoreError: the file cannot be read (a directory, a damaged file).
    """
    return stored_runs(existing_store(results_path), sweep, argument="sweep")


def stored_runs(store: ResultsStore, sweep: str | None, *, argument: str) -> pd.DataFrame:
    """The runs of ``sweep`` (a name or an id; ``None``: every run) in ``store``.

    Raises:
        LookupError: ``sweep`` is given but no stored run belongs to it; the message
            lists the sweeps held and names the caller's ``argument``.
    """
    runs = store.runs(sweep)
    if runs.empty and sweep is not None:
        held = ", ".join(repr(name) for name in dict.fromkeys(store.runs()["sweep_name"]))
        raise LookupError(
            f"No sweep called {sweep!r} in {store.path}; it holds {held or 'none'}. "
            f"Received: {argument}={sweep!r}"
        )
    return runs


def existing_store(results_path: str | os.PathLike[str] | None = None) -> ResultsStore:
    """The store of ``results_path`` (default: ``$NBREPLICA_RESULTS`` or
    ``~/.nbreplica/results.sqlite``), which a sweep must have written already.

    Raises:
        FileNotFoundError: there is no results file at that path.
    """
    store = ResultsStore(results_path)
    if not store.path.exists():
        raise FileNotFoundError(
            f"No results file at {store.path}: no sweep has been stored there yet. "
            f"Received: results_path={results_path!r}"
        )
    return store

"""The results store: round trips, defaults, older files, and concurrent writers."""

from __future__ import annotations

import dataclasses
import math
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

import nbreplica
from nbreplica import SweepResult
from nbreplica.bench.store import (
    RESULTS_ENV_VAR,
    RUN_COLUMNS,
    ResultsStore,
    RunRecord,
    default_results_path,
)

from sweep_helpers import STEADY, stored_runs

RECORD = RunRecord(
    sweep_id="abc123", sweep_name="demo", model="mlp", params=1234, strategy="split",
    scaling="strong", devices=2, repeat=1, global_batch_size=64,
    per_device_batch_size=32.0, steps=10, warmup_steps=2, first_step_s=0.8,
    samples_per_s=5000.0, step_time_p50_s=0.012, step_time_p90_s=0.015,
    step_time_sd_s=0.002, speedup=1.7,
    efficiency=0.85, peak_memory_bytes=None, mean_utilization=None,
    device_metrics="{}", device_names="GPU 0; GPU 1", emulated=True, host="box",
    tensorflow_version="2.21.0", keras_version="3.15.1",
    timestamp="2025-01-01T00:00:00+00:00",
)


def test_round_trip(tmp_path):
    store = ResultsStore(tmp_path / "nested" / "results.sqlite")
    samples = pd.DataFrame({"time": [0.0, 0.5], "device": [0, 1],
                            "metric": ["utilization_gpu"] * 2, "value": [10.0, math.nan]})
    store.append(RECORD, samples)
    store.append(dataclasses.replace(RECORD, sweep_id="other", sweep_name="second",
                                     peak_memory_bytes=2.0**30, emulated=False))
    runs = store.runs()
    assert list(runs.columns) == RUN_COLUMNS
    first = runs.iloc[0]
    assert first.to_dict() | {"peak_memory_bytes": None, "mean_utilization": None} == (
        dataclasses.asdict(RECORD))
    assert math.isnan(first["peak_memory_bytes"])
    assert list(runs["emulated"]) == [True, False]
    assert list(store.runs("demo")["sweep_id"]) == ["abc123"]
    assert list(store.runs("other")["sweep_name"]) == ["second"]
    stored = store.samples("demo")
    assert list(stored["device"]) == ["0", "1"]
    assert stored["value"].iloc[0] == 10.0 and math.isnan(stored["value"].iloc[1])
    assert store.samples("second").empty
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv(RESULTS_ENV_VAR, str(tmp_path / "mine.sqlite"))
    assert default_results_path() == tmp_path / "mine.sqlite"
    monkeypatch.delenv(RESULTS_ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_results_path() == tmp_path / ".nbreplica" / "results.sqlite"


def test_load_results_without_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no sweep has been stored there yet"):
        nbreplica.load_results(results_path=tmp_path / "none.sqlite")


def test_load_rebuilds_a_measured_sweep(side_by_side):
    for name in ("side-by-side", side_by_side.sweep_id, None):
        loaded = SweepResult.load(name, results_path=side_by_side.results_path)
        assert (loaded.name, loaded.sweep_id, loaded.results_path) == (
            "side-by-side", side_by_side.sweep_id, side_by_side.results_path)
        assert (loaded.planned_points, loaded.interrupted) == (15, False)
        pd.testing.assert_frame_equal(loaded.runs, side_by_side.runs, check_dtype=False)
        pd.testing.assert_frame_equal(loaded.frame, side_by_side.frame, check_dtype=False)
        pd.testing.assert_frame_equal(loaded.scaling, side_by_side.scaling)
        pd.testing.assert_frame_equal(loaded.samples, side_by_side.samples,
                                      check_dtype=False)


def test_load_finds_the_latest_sweep_of_a_name(private_results):
    store = ResultsStore()  # the default file: $NBREPLICA_RESULTS
    samples = pd.DataFrame({"time": [0.0], "device": ["0"], "metric": ["memory_used"],
                            "value": [1.0]})
    for sweep_id, name in (("first", "demo"), ("again", "demo"), ("third", "other")):
        store.append(dataclasses.replace(RECORD, sweep_id=sweep_id, sweep_name=name),
                     samples.assign(value=len(sweep_id)))
    assert SweepResult.load().sweep_id == "third"
    again = SweepResult.load("demo")
    assert (again.sweep_id, again.name, again.results_path) == ("again", "demo",
                                                                private_results)
    assert list(again.samples["value"]) == [5.0] and len(again.runs) == 1
    assert SweepResult.load("first", results_path=private_results).sweep_id == "first"


def test_load_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no sweep has been stored there yet"):
        SweepResult.load(results_path=tmp_path / "none.sqlite")
    path = tmp_path / "results.sqlite"
    ResultsStore(path).runs()  # creates the file, empty
    with pytest.raises(LookupError, match=re.escape(
            f"No sweep is stored in {path} yet. Received: name=None")):
        SweepResult.load(results_path=path)
    ResultsStore(path).append(RECORD)
    with pytest.raises(LookupError, match=re.escape(
            f"No sweep called 'nope' in {path}; it holds 'demo'. Received: name='nope'")):
        SweepResult.load("nope", results_path=path)


def test_a_file_from_an_older_version_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE runs (sweep_id TEXT, sweep_name TEXT, devices INTEGER)")
        connection.execute("INSERT INTO runs VALUES ('old', 'before', 4)")
    store = ResultsStore(path)
    store.append(RECORD)
    runs = store.runs()
    assert list(runs["sweep_id"]) == ["old", "abc123"]
    assert math.isnan(runs["samples_per_s"].iloc[0])


def test_a_sweep_stored_before_step_spreads_were_recorded_still_loads(tmp_path):
    path = tmp_path / "before.sqlite"
    older = [column for column in RUN_COLUMNS if column != "step_time_sd_s"]
    runs = stored_runs(STEADY, steps=50, step_cv=0.05, name="before")[older]
    with closing(sqlite3.connect(path)) as connection:
        runs.to_sql("runs", connection, index=False)
    loaded = SweepResult.load("before", results_path=path)
    assert len(loaded.runs) == 9 and loaded.runs["step_time_sd_s"].isna().all()
    # Without the spread, the floor of timed steps decides; 50 is plenty.
    assert loaded.frame["reliable"].all() and (loaded.frame["steps_needed"] == 10).all()
    assert loaded.recommended_devices == {"split": 4}
    assert "split: amdahl serial fraction" in loaded.table()
    assert loaded.forecast is None  # no forecast was stored before forecasts were kept


def test_a_forecast_is_kept_per_sweep_the_latest_one_winning(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    assert store.forecast("abc123") is None
    store.put_forecast("abc123", '{"first": 1}')
    store.put_forecast("other", '{"other": 1}')
    store.put_forecast("abc123", '{"second": 2}')
    assert store.forecast("abc123") == '{"second": 2}'
    assert store.forecast("other") == '{"other": 1}'


WRITER = textwrap.dedent("""
    import dataclasses, os, sys, time
    from pathlib import Path
    from nbreplica.bench.store import ResultsStore
    sys.path.insert(0, {tests!r})
    from test_sweep_store import RECORD

    store = ResultsStore({path!r})
    Path({go!r} + "-ready-" + sys.argv[1]).touch()
    go = Path({go!r})
    while not go.exists():
        time.sleep(0.01)
    for i in range(150):
        store.append(dataclasses.replace(RECORD, sweep_id=sys.argv[1], repeat=i))
        if i == 0:
            print(time.time(), flush=True)  # when the first append got through
""")


def test_two_processes_write_at_once(tmp_path):
    path, go = tmp_path / "shared.sqlite", tmp_path / "go"
    ResultsStore(path).append(RECORD)
    script = WRITER.format(tests=str(Path(__file__).parent), path=str(path), go=str(go))
    writers = [subprocess.Popen([sys.executable, "-c", script, name], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for name in ("first", "second")]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}-ready-{name}").exists() for name in ("first", "second")):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers)
        time.sleep(0.05)
    # A third writer holds the write lock as both start: they must wait, not fail.
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        go.touch()
        time.sleep(1.0)
        released = time.time()
        holder.execute("COMMIT")
    for writer in writers:
        stdout, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
        assert float(stdout) >= released
    runs = ResultsStore(path).runs()
    assert runs.groupby("sweep_id")["repeat"].apply(sorted).to_dict() == {
        "abc123": [1], "first": list(range(150)), "second": list(range(150))}


def test_a_disk_that_fills_up_is_named(tmp_path, monkeypatch):
    """SQLite's "database or disk is full", raised by the first write that finds no room."""
    path = tmp_path / "results.sqlite"
    ResultsStore(path).runs()  # creates the file, empty
    connect = ResultsStore._connect

    class FullDisk:
        def __init__(self, connection):
            self.connection = connection

        def execute(self, sql, *parameters):
            if sql.startswith("INSERT"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.connection.execute(sql, *parameters)

        def close(self):
            self.connection.close()

    monkeypatch.setattr(ResultsStore, "_connect", lambda self: FullDisk(connect(self)))
    with pytest.raises(nbreplica.ResultsStoreError,
                       match=r"cannot be written: its disk is full or failing \(database or "
                             r"disk is full\): free some space"):
        ResultsStore(path).append(RECORD)

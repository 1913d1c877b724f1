"""The recorder: measurements in, stored runs (paired with their baselines) out."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nbreplica.bench.measure import Measurement, Point
from nbreplica.bench.recorder import Recorder
from nbreplica.bench.store import ResultsStore

from sweep_helpers import GPUS

GIB = 1024**3


def measurement(samples_per_s: float, *, memory: dict[int, float] | None = None,
                utilization: dict[int, float] | None = None) -> Measurement:
    return Measurement(
        model="probe", params=42, first_step_s=0.5, samples_per_s=samples_per_s,
        step_time_p50_s=0.010, step_time_p90_s=0.012, step_time_sd_s=0.001,
        samples=pd.DataFrame({"time": [0.1, 0.2], "device": ["0", "1"],
                              "metric": ["utilization_gpu"] * 2, "value": [40.0, 60.0]}),
        peak_memory_bytes=memory or {}, mean_utilization=utilization or {},
    )


def point(strategy: str, devices: int, repeat: int) -> Point:
    return Point(strategy, GPUS[:devices], repeat, 64)


def test_each_run_is_stored_against_its_repeats_baseline_with_its_own_steps(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    recorder = Recorder(store, None, "strong")
    # Cell runs may train different step counts: each record carries its own.
    recorder.record(point("single", 1, 1), measurement(1000.0), steps=10, warmup_steps=1)
    recorder.record(point("split", 2, 1),
                    measurement(1500.0, memory={0: 2 * GIB, 1: 3 * GIB},
                                utilization={0: 50.0, 1: 70.0}),
                    steps=8, warmup_steps=2)
    recorder.record(point("single", 1, 2), measurement(800.0), steps=10, warmup_steps=1)
    recorder.record(point("split", 2, 2), measurement(1600.0), steps=9, warmup_steps=1)

    runs = store.runs()
    assert list(runs["speedup"]) == [1.0, 1.5, 1.0, 2.0]  # against the same repeat
    assert list(runs["efficiency"]) == [1.0, 0.75, 1.0, 1.0]
    assert list(runs["steps"]) == [10, 8, 10, 9]
    assert list(runs["warmup_steps"]) == [1, 2, 1, 1]
    assert (runs["step_time_sd_s"] == 0.001).all()
    assert list(runs["per_device_batch_size"]) == [64, 32, 64, 32]
    assert (runs["sweep_name"] == "probe-strong-b64").all()
    assert (runs["sweep_id"] == recorder.sweep_id).all()
    assert recorder.name == "probe-strong-b64"
    split = runs.iloc[1]
    assert split["peak_memory_bytes"] == 3 * GIB and split["mean_utilization"] == 60.0
    assert json.loads(split["device_metrics"]) == {
        "0": {"peak_memory_bytes": 2 * GIB, "mean_utilization": 50.0},
        "1": {"peak_memory_bytes": 3 * GIB, "mean_utilization": 70.0},
    }
    assert split["device_names"] == "Test GPU 0; Test GPU 1" and not split["emulated"]
    samples = store.samples(recorder.sweep_id)
    assert len(samples) == 8 and list(samples["repeat"].unique()) == [1, 2]
    assert [(r.strategy, r.repeat, r.speedup) for r in recorder.records] == list(
        zip(runs["strategy"], runs["repeat"], runs["speedup"]))


def test_the_result_holds_every_recorded_run(tmp_path):
    recorder = Recorder(ResultsStore(tmp_path / "results.sqlite"), "mine", "weak")
    recorder.record(point("single", 1, 1), measurement(1000.0), steps=5, warmup_steps=1)
    recorder.record(point("mirrored", 4, 1), measurement(2000.0), steps=5, warmup_steps=1)
    result = recorder.result(6, interrupted=True, efficiency_threshold=0.4, confidence=0.9)
    assert (result.name, result.sweep_id, result.results_path) == (
        "mine", recorder.sweep_id, tmp_path / "results.sqlite")
    assert (result.planned_points, result.interrupted, result.confidence) == (6, True, 0.9)
    pd.testing.assert_frame_equal(result.runs, recorder.store.runs(), check_dtype=False)
    assert len(result.samples) == 4
    assert list(result.frame["speedup"]) == [1.0, 2.0]
    assert result.scaling["law"].isna().all()  # not fitted: see the reason
    # One repeat of 5 timed steps: the speedup is no finding to recommend from.
    assert result.recommended_devices == {"mirrored": None}
    assert result.scaling["unreliable_reason"].tolist() == [
        "2 of 2 points unreliable: time ≥ 10 steps/repeat (now 5), run ≥ 3 repeats (now 1)"]


def test_nothing_recorded_is_an_empty_result(tmp_path):
    recorder = Recorder(ResultsStore(tmp_path / "results.sqlite"), None, "strong")
    result = recorder.result(3, interrupted=True, efficiency_threshold=0.7, confidence=0.95)
    assert result.runs.empty and result.frame.empty and result.samples.empty
    assert result.name == "unnamed sweep"
    assert not (tmp_path / "results.sqlite").exists()  # nothing was written


def test_a_point_before_its_baseline_is_refused(tmp_path):
    recorder = Recorder(ResultsStore(tmp_path / "results.sqlite"), None, "strong")
    recorder.record(point("single", 1, 1), measurement(1000.0), steps=5, warmup_steps=1)
    with pytest.raises(ValueError, match=r"baseline \('single' on one device\) must be "
                                         r"recorded before.*Received: split on 2 devices, "
                                         r"repeat 2 before the baseline of repeat 2"):
        recorder.record(point("split", 2, 2), measurement(1500.0), steps=5, warmup_steps=1)
    assert len(recorder.records) == 1 and len(recorder.store.runs()) == 1


def test_every_recorder_is_a_new_sweep(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    assert Recorder(store, "a", "strong").sweep_id != Recorder(store, "a", "strong").sweep_id

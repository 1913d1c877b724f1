"""Real sweeps on emulated devices: what the frame holds, and that the numbers add up."""

from __future__ import annotations

import json
import socket
from datetime import datetime

import numpy as np
import pytest
import pandas as pd
import tensorflow as tf

import nbreplica
from nbreplica.bench.report import summary_text
from nbreplica.bench.stats import SUMMARY_COLUMNS
from nbreplica.bench.store import RUN_COLUMNS
from nbreplica.testing import fake_nvml, plausible_gpus

from sweep_helpers import QUICK, tiny_data, tiny_model


def test_frame_has_one_row_per_strategy_and_device_count(side_by_side):
    frame = side_by_side.frame
    assert list(frame.columns) == SUMMARY_COLUMNS
    assert list(zip(frame["strategy"], frame["devices"])) == [
        ("single", 1), ("split", 2), ("split", 4), ("mirrored", 2), ("mirrored", 4),
    ]
    assert (frame["repeats"] == 3).all()
    assert len(side_by_side.runs) == 15 == side_by_side.planned_points
    assert not side_by_side.interrupted


def test_speedup_and_efficiency_arithmetic(side_by_side):
    frame, runs = side_by_side.frame, side_by_side.runs
    baseline = frame[frame["devices"] == 1].iloc[0]
    assert baseline["speedup"] == baseline["speedup_low"] == baseline["speedup_high"] == 1.0
    assert np.allclose(frame["efficiency"], frame["speedup"] / frame["devices"])
    assert np.allclose(frame["efficiency_low"], frame["speedup_low"] / frame["devices"])
    # Each run's speedup is against the baseline measured in the same repeat.
    baselines = runs[runs["strategy"] == "single"].set_index("repeat")["samples_per_s"]
    assert np.allclose(runs["speedup"], runs["samples_per_s"] / runs["repeat"].map(baselines))
    assert np.allclose(runs["efficiency"], runs["speedup"] / runs["devices"])
    for column in ("samples_per_s", "speedup"):
        assert (frame[f"{column}_low"] <= frame[column]).all()
        assert (frame[column] <= frame[f"{column}_high"]).all()
        # Geometric means across repeats.
        means = np.exp(np.log(runs[column]).groupby([runs["strategy"], runs["devices"]]).mean())
        assert np.allclose(frame.set_index(["strategy", "devices"])[column], means.loc[
            list(zip(frame["strategy"], frame["devices"]))])


def test_step_times_exclude_warm_up(side_by_side):
    runs = side_by_side.runs
    assert (runs["step_time_p50_s"] <= runs["step_time_p90_s"]).all()
    # The first step traces the training function: far slower than a steady step.
    assert (runs["first_step_s"] > runs["step_time_p90_s"]).all()
    # Strong scaling: every point trains on the same global batch.
    assert (runs["global_batch_size"] == 32).all()
    assert np.allclose(runs["per_device_batch_size"], 32 / runs["devices"])
    assert (runs["steps"] == 3).all() and (runs["warmup_steps"] == 1).all()
    assert (runs["step_time_sd_s"] > 0).all()


def test_every_run_records_its_environment(side_by_side):
    runs = side_by_side.runs
    assert list(runs.columns) == RUN_COLUMNS
    assert (runs["host"] == socket.gethostname()).all()
    assert (runs["tensorflow_version"] == tf.__version__).all()
    assert runs["emulated"].all()
    assert (runs["params"] == tiny_model().count_params()).all()
    assert (runs["model"] == "tiny").all()
    for row in runs.itertuples():
        names = row.device_names.split("; ")
        assert len(names) == row.devices
        assert all(name.startswith("Emulated GPU") for name in names)
        assert datetime.fromisoformat(row.timestamp).tzinfo is not None
        # Emulated devices have no counters: known to be unknown, not zero.
        assert json.loads(row.device_metrics) == {
            str(i): {"peak_memory_bytes": None, "mean_utilization": None}
            for i in range(row.devices)
        }
    assert runs["peak_memory_bytes"].isna().all()


def test_split_interleaves_with_the_baseline_and_mirrored_comes_last(side_by_side):
    order = list(side_by_side.runs[["repeat", "strategy", "devices"]].itertuples(index=False,
                                                                                 name=None))
    assert order[:9] == [(r, strategy, devices) for r in (1, 2, 3) for strategy, devices
                         in (("single", 1), ("split", 2), ("split", 4))]
    assert order[9:] == [(r, "mirrored", devices) for r in (1, 2, 3) for devices in (2, 4)]


def test_too_few_timed_steps_are_marked_and_not_fitted(side_by_side):
    frame = side_by_side.frame
    assert (frame["timed_steps"] == 3).all() and not frame["reliable"].any()
    assert (frame["steps_needed"] >= 10).all()
    assert frame["step_time_cv"].notna().all()  # the spread of 3 steps is known
    for reason, needed in zip(frame["unreliable_reason"], frame["steps_needed"]):
        assert reason.startswith(f"3 timed steps/repeat, time ≥ {needed}")
    scaling = side_by_side.scaling
    assert list(scaling["strategy"]) == ["split", "mirrored"]
    assert scaling["law"].isna().all()
    assert scaling["serial_fraction"].isna().all() and not scaling["reliable"].any()
    assert side_by_side.recommended_devices == {"split": None, "mirrored": None}


def test_mirrored_strategies_over_different_device_counts_share_one_process(side_by_side):
    # The session sweep already ran MirroredStrategy over 2 and 4 devices, 3 times
    # each; another sweep over 2 then 3 devices must still work in this process.
    x, y = tiny_data()
    result = nbreplica.sweep(tiny_model, x, y, devices=(2, 3), batch_size=24,
                             strategy="mirrored", repeats=1, **QUICK)
    assert list(result.frame["devices"]) == [1, 2, 3]
    assert np.isfinite(result.frame["samples_per_s"]).all()
    assert not tf.distribute.has_strategy()


def test_weak_scaling_from_a_dataset_with_sampled_devices():
    x, y = tiny_data()
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    with fake_nvml(*plausible_gpus(8)):
        result = nbreplica.sweep(tiny_model, batches, devices=(1, 2), batch_size=16,
                                 scaling="weak", repeats=2, sample_interval=0.02, **QUICK)
    runs = result.runs
    assert list(runs["global_batch_size"]) == [16, 32, 16, 32]
    assert (runs["per_device_batch_size"] == 16).all()
    assert (result.frame["scaling"] == "weak").all()
    # The fake driver's GPU 1 is busy (28 GiB, ~90%); GPU 0 is idle.
    two = json.loads(runs.loc[runs["devices"] == 2, "device_metrics"].iloc[0])
    assert two["1"]["peak_memory_bytes"] > 20 * 1024**3 > two["0"]["peak_memory_bytes"]
    assert two["1"]["mean_utilization"] > 50 > two["0"]["mean_utilization"]
    samples = result.samples
    assert {"utilization_gpu", "memory_used"} <= set(samples["metric"])
    assert samples["time"].is_monotonic_increasing or samples.groupby(
        ["strategy", "devices", "repeat"])["time"].min().is_monotonic_increasing
    figure = result.plot_utilization()
    assert [axes.get_ylabel() for axes in figure.axes] == ["utilization (%)",
                                                           "memory used (GiB)"]


def test_results_are_stored_as_they_are_measured(side_by_side):
    stored = nbreplica.load_results(side_by_side.sweep_id,
                                    results_path=side_by_side.results_path)
    pd.testing.assert_frame_equal(stored, side_by_side.runs, check_dtype=False)
    assert len(nbreplica.load_results("side-by-side",
                                      results_path=side_by_side.results_path)) == 15


def test_device_counts_take_the_first_selected_devices():
    nbreplica.use_devices([7, 3, 5, 6])
    x, y = tiny_data()
    result = nbreplica.sweep(tiny_model, x, y, devices=(2, 4), batch_size=8, repeats=1,
                             **QUICK)
    used = [[int(name.split()[2]) for name in names.split("; ")]
            for names in result.runs["device_names"]]
    assert used == [[3], [3, 5], [3, 5, 6, 7]]


def test_a_sweep_splits_by_shares_and_its_report_says_which_split():
    x, y = tiny_data()
    result = nbreplica.sweep(tiny_model, x, y, devices=(2, 4), batch_size=16, repeats=1,
                             shares=[4, 2, 1, 1], **QUICK)
    split = dict(zip(result.runs["devices"], result.runs["shares"].fillna("")))
    # A point on 2 of the 4 devices uses the first two shares, 4:2.
    assert split == {1: "", 2: "given 67% · 33%", 4: "given 50% · 25% · 12% · 12%"}
    text = summary_text(result).replace("\n  ", " ")  # what a terminal shows
    assert ("Each batch split by shares: split on 2 devices given 67% · 33%; split on 4 "
            "devices given 50% · 25% · 12% · 12%") in text
    assert "Each batch split by shares" in result._repr_html_()
    stored = nbreplica.load_results(result.sweep_id, results_path=result.results_path)
    assert list(stored["shares"].fillna("")) == ["", "given 67% · 33%",
                                                  "given 50% · 25% · 12% · 12%"]


def test_an_even_sweep_reports_no_split_and_bad_shares_fail_before_measuring():
    x, y = tiny_data()
    result = nbreplica.sweep(tiny_model, x, y, devices=(2,), batch_size=16, repeats=1,
                             shares="even", **QUICK)
    assert list(result.runs["shares"].fillna("")) == ["", "even 50% · 50%"]
    assert "split by shares" not in summary_text(result)
    with pytest.raises(ValueError, match=r"one number per device of the largest point \(4\)"
                                         r".*Received: shares=\[1, 1\]"):
        nbreplica.sweep(tiny_model, x, y, devices=(2, 4), shares=[1, 1], **QUICK)
    with pytest.raises(ValueError, match=r"Received: shares='fastest'"):
        nbreplica.sweep(tiny_model, x, y, devices=(2,), shares="fastest", **QUICK)
    with pytest.raises(TypeError, match=r"a sequence of positive numbers.*Received: shares=2"):
        nbreplica.sweep(tiny_model, x, y, devices=(2,), shares=2, **QUICK)

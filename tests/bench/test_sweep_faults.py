"""Bad input and faults: clear errors, and nothing measured is lost."""

from __future__ import annotations

import re

import keras
import pytest
import tensorflow as tf

import nbreplica
from nbreplica import SweepError, SweepInterrupted

from sweep_helpers import QUICK, tiny_data, tiny_model


@pytest.mark.parametrize(("devices", "problem"), [
    ((1, 16), "asks for 16 devices, but only 8 are available"),
    ((0, 2), "whole device counts >= 1"),
    ((1, 2, 2), "must not repeat a device count"),
    ((), "whole device counts >= 1"),
    ((1, 2.5), "whole device counts >= 1"),
])
def test_bad_device_counts(devices, problem):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        nbreplica.sweep(tiny_model, x, y, devices=devices, **QUICK)
    assert f"Received: devices={devices!r}" in str(caught.value)


def test_device_counts_beyond_the_selection():
    nbreplica.use_devices([0, 1])
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"only 2 are available .*Received: devices=\(1, 4\)"):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 4), **QUICK)


@pytest.mark.parametrize(("argument", "value"), [
    ("strategy", "ring"), ("strategy", ("split", "split")), ("scaling", "medium"),
    ("repeats", 0), ("steps", 1.5), ("batch_size", True), ("efficiency_threshold", 1.5),
    ("confidence", 1.0), ("sample_interval", 0), ("target_ci", 0), ("target_ci", "10%"),
    ("target_ci", float("inf")),
])
def test_bad_settings(argument, value):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=re.escape(f"Received: {argument}={value!r}")):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 2), **{**QUICK, argument: value})


@pytest.mark.parametrize("budget", [None, 0, -5.0, "3 min"])
def test_an_adaptive_sweep_needs_a_time_budget(budget):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=re.escape(
            "budget must be the seconds an adaptive sweep may take (e.g. 180); pass "
            f"target_ci=None for a sweep without one. Received: budget={budget!r}")):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 2),
                        **{**QUICK, "target_ci": 0.1, "budget": budget})


def test_data_smaller_than_one_batch():
    x, y = tiny_data(samples=40)
    with pytest.raises(ValueError, match=r"fewer examples than one global batch of 64.*"
                                         r"Received: x with 40 examples"):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 2), batch_size=64, **QUICK)
    # Weak scaling: the largest point needs batch_size x devices examples.
    with pytest.raises(ValueError, match="one global batch of 80"):
        nbreplica.sweep(tiny_model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                        devices=(1, 4), batch_size=20, scaling="weak", **QUICK)


def test_model_fn_that_raises_keeps_the_points_measured_before(private_results):
    calls = []

    def flaky() -> keras.Model:
        calls.append(None)
        if len(calls) == 3:
            raise RuntimeError("out of memory (simulated)")
        return tiny_model()

    x, y = tiny_data()
    with pytest.raises(SweepError, match=r"model_fn raised RuntimeError while building the "
                       r"model for split on 4 devices, repeat 1: out of memory \(simulated\)"
                       r"\. Received: model_fn=") as caught:
        nbreplica.sweep(flaky, x, y, devices=(1, 2, 4), **QUICK)
    assert isinstance(caught.value.__cause__, RuntimeError)
    stored = nbreplica.load_results()
    assert list(stored["devices"]) == [1, 2]


def test_model_fn_must_return_a_compiled_model():
    x, y = tiny_data()

    def uncompiled() -> keras.Model:
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])

    with pytest.raises(SweepError, match="compiled keras.Model.*Received: model_fn returned"):
        nbreplica.sweep(uncompiled, x, y, devices=(1, 2), **QUICK)
    with pytest.raises(TypeError, match="Received: model_fn=3"):
        nbreplica.sweep(3, x, y, **QUICK)


def test_interrupt_keeps_completed_points_and_restores_devices(private_results, tmp_path):
    nbreplica.use_devices([1, 2, 4, 6])
    calls = []

    def interrupted_on_eighth_model() -> keras.Model:
        calls.append(None)
        if len(calls) == 8:  # mirrored on 4 devices: inside the strategy's scope
            raise KeyboardInterrupt
        return tiny_model()

    x, y = tiny_data()
    with pytest.raises(SweepInterrupted) as caught:
        nbreplica.sweep(interrupted_on_eighth_model, x, y, devices=(2, 4), repeats=2,
                        strategy=("split", "mirrored"), **QUICK)
    stop = caught.value
    assert isinstance(stop, KeyboardInterrupt)
    result = stop.result
    assert result.interrupted and result.planned_points == 10
    assert list(zip(result.runs["strategy"], result.runs["devices"])) == [
        ("single", 1), ("split", 2), ("split", 4)] * 2 + [("mirrored", 2)]
    assert "interrupted after 7 of 10 points" in str(stop)
    assert result.sweep_id in str(stop)
    # Nothing measured was lost, and nothing about the devices changed.
    assert list(nbreplica.load_results(result.sweep_id)["devices"]) == [1, 2, 4, 1, 2, 4, 2]
    assert nbreplica.selected_devices() == (1, 2, 4, 6)
    assert not tf.distribute.has_strategy()
    paths = result.save(tmp_path / "partial")
    assert "Interrupted: 7 of 10 points" in paths["report"].read_text()


def test_several_steps_per_call():
    def batched_calls() -> keras.Model:
        model = tiny_model()
        model.compile("sgd", "mse", steps_per_execution=2)
        return model

    x, y = tiny_data()
    result = nbreplica.sweep(batched_calls, x, y.reshape(-1, 1).repeat(3, axis=1),
                             devices=(1, 2), batch_size=16, repeats=1,
                             **{**QUICK, "steps": 4, "warmup_steps": 2})
    assert (result.runs["samples_per_s"] > 0).all()
    with pytest.raises(SweepError, match=r"No step ran after the warm-up.*runs 2 steps per "
                                         r"call.*Received: steps=1, warmup_steps=1"):
        nbreplica.sweep(batched_calls, x, y.reshape(-1, 1).repeat(3, axis=1),
                        devices=(1, 2), batch_size=16, repeats=1,
                        **{**QUICK, "steps": 1, "warmup_steps": 1})

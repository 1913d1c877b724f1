"""Counting what a cell's Model.fit calls trained: batch layouts and step timing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nbreplica.notebook.training import BatchLayout, FitObserver, batch_layout

X = np.zeros((100, 3), dtype=np.float32)
Y = np.zeros((100, 1), dtype=np.float32)


class Batches(keras.utils.PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return X[:10], Y[:10]


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"x": X, "y": Y}, BatchLayout(32, 100)),
    ({"x": X, "y": Y, "batch_size": 64, "validation_split": 0.25}, BatchLayout(64, 75)),
    ({"x": X, "y": Y, "batch_size": 256}, BatchLayout(100, 100)),
    ({"x": X, "batch_size": 10, "steps_per_epoch": 3}, BatchLayout(10)),
    ({"x": {"a": X, "b": X}, "y": Y, "batch_size": 50}, BatchLayout(50, 100)),
    ({"x": tf.data.Dataset.from_tensor_slices((X, Y)).batch(16, drop_remainder=True)},
     BatchLayout(16)),
    ({"x": tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)}, BatchLayout(16)),
    ({"x": (row for row in X)}, None),
    ({"x": iter([X])}, None),
    ({"x": Batches()}, None),
    ({}, None),
])
def test_batch_layout_from_fit_arguments(arguments, expected):
    assert batch_layout(arguments) == expected


def test_the_last_batch_of_an_epoch_may_be_partial():
    layout = BatchLayout(32, 100)
    assert [layout.samples(step, 4) for step in range(4)] == [32, 32, 32, 4]
    assert BatchLayout(16).samples(3, 4) == 16


def test_observer_counts_every_step_and_leaves_the_first_out_of_the_rate():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)], name="probe")
    model.compile("sgd", "mse")
    observer = FitObserver()
    arguments = {"x": X, "y": Y, "batch_size": 30, "epochs": 2, "verbose": 0}
    observer.observe(model, arguments)
    model.fit(**arguments)
    stats = observer.stats()
    assert (stats.model, stats.params, stats.fits) == ("probe", 4, 1)
    # 30, 30, 30, 10 per epoch; the first step is warm-up.
    assert (stats.steps, stats.warmup_steps, stats.samples, stats.batch_size) == (8, 1, 200, 30)
    assert stats.samples_per_s == pytest.approx(170 * stats.steps_per_s / 7)
    assert 0 < stats.step_time_p50_s <= stats.step_time_p90_s


def test_observer_leaves_a_ready_made_callback_list_alone():
    observer = FitObserver()
    callbacks = keras.callbacks.CallbackList([])
    arguments = {"x": X, "callbacks": callbacks}
    observer.observe(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), arguments)
    assert arguments["callbacks"] is callbacks and observer.stats() is None

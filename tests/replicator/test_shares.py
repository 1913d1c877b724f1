"""Uneven splits, ``replicate(model, shares=...)``: the rounding of rows, training that
stays exact with any shares, shares from free memory and from NVML's description of a
mixed machine (the simulated driver), the calibration of ``"auto"`` (with an injected
clock), and bad shares."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import nbreplica
from nbreplica.gpus.available import Accelerator
from nbreplica.replicator.calibration import calibrate
from nbreplica.replicator.plan import make_plan, shared_sizes
from nbreplica.replicator.shares import resolve_shares
from nbreplica.testing import fake_nvml
from nbreplica.testing.plausible import mixed_gpus
from replica_models import assert_same_training, make_mlp, random_data

ATOL = 1e-6
UNEVEN = [pytest.param([0.5, 0.25, 0.25], id="half-quarter-quarter"),
          pytest.param([3, 1], id="three-to-one"),
          pytest.param([0.1, 0.2, 0.3, 0.4], id="four-rising")]


@pytest.mark.parametrize("rows, shares, sizes", [
    (64, [0.5, 0.25, 0.25], [32, 16, 16]),
    (8, [3 / 4, 1 / 4], [6, 2]),
    (100, [0.9, 0.1], [90, 10]),
    (10, [0.45, 0.45, 0.1], [5, 4, 1]),     # remainder: largest fraction, ties to the lower
    (7, [0.25] * 4, [2, 2, 2, 1]),          # equal shares: the even split
    (5, [0.9, 0.05, 0.05], [3, 1, 1]),      # below one row: one row, the rest shared
    (4, [0.7, 0.1, 0.1, 0.1], [1, 1, 1, 1]),
])
def test_rows_follow_the_shares_by_largest_remainder_and_never_drop_below_one(rows, shares,
                                                                               sizes):
    got = shared_sizes(tf.constant(rows), shares).numpy().tolist()
    assert got == sizes
    assert sum(got) == rows


def test_a_shared_plan_weights_each_replica_by_its_real_rows():
    layout = make_plan(tf.constant(14), 3, (0.5, 0.25, 0.25))
    assert layout.sizes.numpy().tolist() == [7, 4, 3]
    assert layout.starts.numpy().tolist() == [0, 7, 11]
    np.testing.assert_allclose(layout.weights.numpy(), [7 / 14, 4 / 14, 3 / 14])
    padded = make_plan(tf.constant(2), 3, (0.5, 0.25, 0.25))  # fewer rows than devices
    assert padded.sizes.numpy().tolist() == [1, 1, 1]
    assert padded.real_rows.numpy().tolist() == [1, 1, 0]


def _fit_both(build, shares, compile_kwargs, x, y, **fit_kwargs):
    """Train the template on one device and replicated by ``shares`` from the same
    weights, each compiled with a fresh ``compile_kwargs()`` (metric objects keep
    state); returns (histories, templates, the replicated model)."""
    histories, templates, parallel = [], [], None
    for wrap in (False, True):
        template = build()
        model = template
        if wrap:
            model = parallel = nbreplica.replicate(template, gpus=len(shares),
                                                   shares=shares)
        model.compile(**compile_kwargs())
        histories.append(model.fit(x, y, shuffle=False, verbose=0, **fit_kwargs).history)
        templates.append(template)
    return histories, templates, parallel


@pytest.mark.parametrize("shares", UNEVEN)
def test_a_dense_model_with_several_metrics_and_sample_weights_trains_exactly(shares):
    x, y = random_data(30)
    weights = np.random.default_rng(7).uniform(0.1, 2.0, size=30).astype("float32")
    def compile_kwargs():
        return {"optimizer": keras.optimizers.Adam(0.01), "loss": "mse",
                "metrics": ["mae", keras.metrics.RootMeanSquaredError(),
                            keras.metrics.CosineSimilarity()],
                "weighted_metrics": ["mse"]}
    histories, templates, parallel = _fit_both(make_mlp, shares, compile_kwargs, x, y,
                                               batch_size=11, epochs=2, sample_weight=weights)
    assert parallel.shares_source == "given"
    np.testing.assert_allclose(parallel.shares, np.asarray(shares) / np.sum(shares))
    assert len(histories[1]) >= 5
    assert_same_training(histories, templates)
    np.testing.assert_allclose(parallel.predict(x, batch_size=11, verbose=0),
                               templates[1].predict(x, batch_size=11, verbose=0), atol=ATOL)


class ScaledActivity(keras.layers.Layer):
    """Adds a per-sample loss of shape ``(batch, 1)`` (summed by Keras) and a scalar
    batch mean (weighted by each replica's share)."""

    def call(self, h):
        self.add_loss(0.01 * keras.ops.sum(keras.ops.square(h), axis=1, keepdims=True))
        self.add_loss(0.1 * keras.ops.mean(keras.ops.abs(h)))
        return h


def _added_loss_model():
    keras.utils.set_random_seed(0)
    x = keras.Input((16,))
    h = keras.layers.Dense(8, activation="tanh",
                           activity_regularizer=keras.regularizers.L2(0.01))(x)
    return keras.Model(x, keras.layers.Dense(4)(ScaledActivity()(h)))


@pytest.mark.parametrize("shares", UNEVEN)
def test_added_losses_train_exactly(shares):
    x, y = random_data(26)
    def compile_kwargs():
        return {"optimizer": keras.optimizers.SGD(0.05), "loss": "mse"}
    histories, templates, _ = _fit_both(_added_loss_model, shares, compile_kwargs, x, y,
                                        batch_size=10, epochs=2)  # last batch: 6 rows
    assert_same_training(histories, templates)


def _masked_tagger():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(20, 4, mask_zero=True)(tokens)
    h = keras.layers.LSTM(5, return_sequences=True)(h)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize("shares", UNEVEN)
def test_masked_sequences_and_sparse_embedding_gradients_train_exactly(shares):
    rng = np.random.default_rng(5)
    x = rng.integers(1, 20, size=(16, 6))
    for row, length in enumerate(rng.integers(1, 7, size=16)):
        x[row, length:] = 0
    y = rng.integers(0, 3, size=(16, 6))
    def compile_kwargs():
        return {"optimizer": keras.optimizers.Adam(0.05),
                "loss": "sparse_categorical_crossentropy",
                "metrics": ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(2)]}
    histories, templates, _ = _fit_both(_masked_tagger, shares, compile_kwargs,
                                        x.astype("int32"), y.astype("int32"),
                                        batch_size=10, epochs=2)
    assert_same_training(histories, templates)


def test_check_fidelity_checks_a_split_by_shares():
    x, y = random_data(36)
    model = make_mlp()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    report = nbreplica.check_fidelity(model, x, y, gpus=3, shares=[0.5, 0.25, 0.25],
                                      batch_size=12)
    assert report.ok, str(report)
    assert report.devices == 3


# -- where shares come from ---------------------------------------------------------

def _string_model():
    """A model whose string input no batch can be made up for: "auto" cannot time it."""
    keras.utils.set_random_seed(0)
    text = keras.Input((1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=["a", "b", "c"])(text)
    h = keras.layers.Flatten()(keras.layers.Embedding(5, 3)(ids))
    return keras.Model(text, keras.layers.Dense(2)(h))


def test_memory_and_nvml_shares_on_a_simulated_mixed_machine():
    with fake_nvml(*mixed_gpus()):
        by_memory = nbreplica.replicate(make_mlp(), gpus=4, shares="memory")
        described = nbreplica.replicate(_string_model(), gpus=4, shares="auto")
    assert by_memory.shares_source == "memory"
    np.testing.assert_allclose(by_memory.shares, np.array([72, 50, 12, 9]) / 143)
    assert described.shares_source == "nvml"
    a100, t4 = 6912 * 1410, 2560 * 1590
    np.testing.assert_allclose(described.shares,
                               np.array([a100, a100, t4, t4]) / (2 * a100 + 2 * t4))
    rows = make_plan(tf.constant(143), 4, by_memory.shares).sizes.numpy().tolist()
    assert rows == [72, 50, 12, 9]


def test_a_mixed_split_from_nvml_trains_exactly():
    with fake_nvml(*mixed_gpus()):
        shares = resolve_shares("memory", make_mlp(), nbreplica.list_devices()[:4]).values
    x, y = random_data(40)
    def compile_kwargs():
        return {"optimizer": keras.optimizers.Adam(0.01), "loss": "mse", "metrics": ["mae"]}
    histories, templates, _ = _fit_both(make_mlp, list(shares), compile_kwargs, x, y,
                                        batch_size=20, epochs=2)
    assert_same_training(histories, templates)


class PositiveOnly(keras.layers.Layer):
    """Refuses the negative numbers a made-up batch of normal noise holds."""

    def call(self, x):
        tf.debugging.assert_non_negative(x, message="positive features only")
        return x


def test_auto_falls_back_on_nvml_when_the_model_fails_on_made_up_data(capsys):
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(2)(PositiveOnly()(x)))
    with fake_nvml(*mixed_gpus()):
        parallel = nbreplica.replicate(model, gpus=[1, 2], shares="auto")
    assert parallel.shares_source == "nvml"
    np.testing.assert_allclose(parallel.shares, [0.705, 0.295], atol=1e-3)
    assert capsys.readouterr().out.endswith(" failed\n")


def test_real_gpus_are_found_in_nvml_under_cuda_visible_devices(monkeypatch):
    # A process that sees NVML's GPUs 3 and 1, as TensorFlow's GPUs 0 and 1.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    seen = [Accelerator(0, "GPU 3", "/device:GPU:0", emulated=False),
            Accelerator(1, "GPU 1", "/device:GPU:1", emulated=False)]
    with fake_nvml(*mixed_gpus()):
        shares = resolve_shares("memory", make_mlp(), seen)
    np.testing.assert_allclose(shares.values, np.array([9, 50]) / 59)


def test_memory_shares_need_nvml():
    with pytest.raises(ValueError, match=r"free memory.*Received: shares='memory'"):
        nbreplica.replicate(make_mlp(), gpus=2, shares="memory")


def test_auto_without_timing_or_nvml_splits_evenly_and_says_why():
    with pytest.warns(UserWarning, match=r"evenly: the template cannot be timed .*string"):
        parallel = nbreplica.replicate(_string_model(), gpus=2, shares="auto")
    assert parallel.shares_source == "even"
    assert parallel.shares == (0.5, 0.5)


def _clock(durations):
    """A clock whose consecutive start/stop readings are ``durations`` apart."""
    now = itertools.count()
    readings = []
    for duration in durations:
        start = float(next(now)) * 100
        readings += [start, start + duration]
    return iter(readings).__next__


def _batch_normalized():
    keras.utils.set_random_seed(0)
    x = keras.Input((16,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8)(x))
    h = keras.layers.Dropout(0.3, seed=1)(h)
    return keras.Model(x, keras.layers.Dense(4)(h))


def test_calibration_times_each_device_and_leaves_the_template_as_it_was(capsys):
    template = _batch_normalized()
    template.compile(optimizer="adam", loss="mse")
    before = [np.copy(w) for w in template.get_weights()]
    state = [np.copy(v.numpy()) for v in template.non_trainable_variables]  # seeds too
    devices = nbreplica.list_devices()[:3]
    # Two rounds of one step per device, in turn: device 1 is twice as slow.
    clock = _clock([1.0, 2.0, 1.0, 1.0, 2.0, 1.0])
    seconds = calibrate(template, devices, clock=clock, steps=2)
    assert seconds == [1.0, 2.0, 1.0]
    for got, want in zip(template.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert any("seed_generator" in v.path for v in template.non_trainable_variables)
    for variable, want in zip(template.non_trainable_variables, state):
        np.testing.assert_array_equal(variable.numpy(), want)
    assert int(template.optimizer.iterations) == 0
    line = capsys.readouterr().out
    assert "Calibrating shares='auto': 2 steps of" in line and "on each of 3 devices" in line
    assert " done in " in line


def test_auto_shares_follow_the_calibrated_speeds():
    durations = [1.0, 2.0, 1.0] * 10  # CALIBRATION_STEPS rounds
    shares = resolve_shares("auto", make_mlp(), nbreplica.list_devices()[:3],
                            clock=_clock(durations))
    assert shares.source == "calibration"
    np.testing.assert_allclose(shares.values, [0.4, 0.2, 0.4])


def test_auto_on_identical_emulated_devices_is_about_even():
    parallel = nbreplica.replicate(make_mlp(), gpus=4, shares="auto")
    assert parallel.shares_source == "calibration"
    # Emulated devices share one CPU with whatever else runs: on a busy machine a
    # calibration is only roughly even (benchmarks/bench_shares.py measures how close).
    assert sum(parallel.shares) == pytest.approx(1.0)
    assert all(0.125 < share < 0.5 for share in parallel.shares), parallel.shares


# -- bad shares --------------------------------------------------------------------

@pytest.mark.parametrize("shares, error, message", [
    ([0.5, 0.5], ValueError, r"one number per device: 3 devices, 2 shares"),
    ([0.5, 0.0, 0.5], ValueError, r"finite number > 0"),
    ([0.5, -0.2, 0.7], ValueError, r"finite number > 0"),
    ([0.5, float("nan"), 0.5], ValueError, r"finite number > 0"),
    ([0.5, float("inf"), 0.5], ValueError, r"finite number > 0"),
    ([0.5, True, 0.5], TypeError, r"must be a number"),
    ("fast", ValueError, r"one of \('even', 'auto', 'memory'\)"),
    (0.5, TypeError, r"a sequence of positive numbers"),
])
def test_bad_shares(shares, error, message):
    with pytest.raises(error, match=message + r".*Received: shares="):
        nbreplica.replicate(make_mlp(), gpus=3, shares=shares)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_a_share_below_one_row_of_the_batch_is_refused_before_training(method):
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=3, shares=[0.9, 0.05, 0.05])
    parallel.compile(optimizer="sgd", loss="mse")
    x, y = random_data(32)
    arguments = (x,) if method == "predict" else (x, y)
    before = [np.copy(w) for w in template.get_weights()]
    with pytest.raises(ValueError, match=r"0.40 rows of a batch of 8, less than one: use a "
                                         r"batch of at least 20 rows.*Received: shares="
                                         r"\[0.9, 0.05, 0.05\], batch_size=8"):
        getattr(parallel, method)(*arguments, batch_size=8, verbose=0)
    for got, want in zip(template.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    getattr(parallel, method)(*arguments, batch_size=20, verbose=0)  # one row each: fine

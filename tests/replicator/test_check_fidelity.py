"""``nbreplica.check_fidelity``: a clean model trains like one device; documented
differences (BatchNormalization, random layers) are named and explained; a layer that
depends on the whole batch is named and fails the check (8 emulated GPUs: see
tests/conftest.py)."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import nbreplica
from nbreplica.replicator.fidelity.capture import FirstGradients
from nbreplica.replicator.fidelity.difference import FLOOR, relative_difference, threshold_for
from nbreplica.replicator.fidelity.documented import (
    BATCH_STATISTICS, RANDOMNESS, documented_differences)

CLEAN = re.compile(r"trains like one device: max relative difference \S+ over 4 weights and "
                   r"2 metrics in 3 steps on 4 devices; rounding threshold 1e-5$")


class BatchCentering(keras.layers.Layer):
    """Subtracts the batch mean: its output depends on the whole batch."""

    def call(self, inputs):
        return inputs - keras.ops.mean(inputs, axis=0, keepdims=True)


class ScaledSteps(keras.Model):
    """Its own train_step, which hands the optimizer three times the loss gradients."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip([3.0 * g for g in grads], self.trainable_variables))
        return {"loss": loss}


def build(*middle: keras.Layer, cls: type[keras.Model] = keras.Model,
          compiled: bool = True) -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((5,))
    h = keras.layers.Dense(8, activation="tanh", name="hidden")(x)
    for layer in middle:
        h = layer(h)
    model = cls(x, keras.layers.Dense(3, name="scores")(h), name="net")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def data(rows: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return (rng.normal(size=(rows, 5)).astype("float32"),
            rng.normal(size=(rows, 3)).astype("float32"))


def test_a_clean_model_trains_like_one_device_and_is_left_unchanged():
    model = build()
    before = [w.numpy().copy() for w in model.weights]
    report = nbreplica.check_fidelity(model, *data(), batch_size=16)
    assert report.ok and report.differing == () and report.documented == ()
    assert CLEAN.match(str(report)), str(report)
    assert list(report.frame["weight"]) == ["hidden/kernel", "hidden/bias", "scores/kernel",
                                            "scores/bias"]
    assert list(report.frame["layer"]) == ["hidden", "hidden", "scores", "scores"]
    assert (report.frame["gradient_difference"] < 1e-5).all()
    assert (report.frame["value_difference"] < 1e-5).all()
    assert report.history[["step", "metric"]].values.tolist() == [
        [1, "loss"], [1, "mae"], [2, "loss"], [2, "mae"], [3, "loss"], [3, "mae"]]
    assert report.origins == ()
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(weight.numpy(), value)
    assert int(model.optimizer.iterations.numpy()) == 0


def test_batch_normalization_is_a_documented_difference_not_a_failure():
    report = nbreplica.check_fidelity(build(keras.layers.BatchNormalization(name="bn")),
                                      *data(), batch_size=16)
    assert report.ok
    assert [(d.layer, d.kind) for d in report.documented] == [("bn", BATCH_STATISTICS)]
    assert report.origins == ("bn",)
    assert {"bn", "hidden"} <= set(report.differing) and report.unexplained == ()
    moving = report.frame.set_index("weight").loc["bn/moving_mean"]
    assert np.isnan(moving["gradient_difference"]) and moving["differs"]
    verdict, documented = str(report).split("\n")
    assert verdict.startswith("trains like one device but for the documented differences "
                              "below: outputs first differ in bn; gradients or values differ "
                              "in hidden, bn")
    assert documented.startswith("- documented: bn (BatchNormalization): in training, each "
                                 "replica normalises its sub-batch with its own statistics")


def test_dropout_is_a_documented_difference_with_one_mask_per_replica():
    report = nbreplica.check_fidelity(build(keras.layers.Dropout(0.3, name="drop")), *data(),
                                      batch_size=16)
    assert report.ok
    assert [(d.layer, d.kind) for d in report.documented] == [("drop", RANDOMNESS)]
    assert report.differing == ("drop", "hidden", "scores")
    assert str(report).splitlines()[1] == (
        "- documented: drop (Dropout): draws one independent random sample (a mask, noise) "
        "per replica's sub-batch instead of one for the whole batch")


def test_a_layer_that_depends_on_the_whole_batch_is_named_and_fails():
    report = nbreplica.check_fidelity(build(BatchCentering(name="centering")), *data(),
                                      batch_size=16)
    assert not report.ok
    assert report.origins == ("centering",)
    assert report.differing[0] == "centering" and "hidden" in report.differing
    assert "centering" in report.unexplained
    assert str(report).startswith("differs from one device: outputs first differ in "
                                  "centering; gradients or values differ in hidden")
    assert "loss and mae differ" in str(report)


def test_a_documented_difference_does_not_explain_a_batch_dependent_layer_before_it():
    report = nbreplica.check_fidelity(
        build(BatchCentering(name="centering"), keras.layers.Dropout(0.3, name="drop")),
        *data(), batch_size=16)
    assert not report.ok
    assert [d.layer for d in report.documented] == ["drop"]
    assert report.origins == ("centering",)  # the dropout's inputs differ already
    assert report.unexplained == ("centering",)
    assert ("; the documented differences below do not explain centering (max relative "
            "difference") in report.verdict


def test_the_builder_form_and_a_subclassed_model():
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(8, activation="tanh")
            self.scores = keras.layers.Dense(3)

        def call(self, inputs):
            return self.scores(self.hidden(inputs))

    x, y = data()

    def build_net():  # unseeded: the second build gets the first one's weights
        net = Net()
        net(x[:1])
        net.compile(optimizer="sgd", loss="mse")
        return net

    report = nbreplica.check_fidelity(build_net, x, y, gpus=[1, 3, 6], steps=2, batch_size=12)
    assert report.ok and report.devices == 3 and report.steps == 2
    assert report.frame["gradient_difference"].notna().all()
    assert report.origins is None  # no functional graph to probe
    assert str(report).startswith("trains like one device: max relative difference")


def test_a_template_with_its_own_train_step_on_a_dataset():
    x, y = data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    model = build(cls=ScaledSteps, compiled=False)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    report = nbreplica.check_fidelity(model, dataset, steps=4)
    assert report.ok, str(report)
    assert set(report.history["metric"]) == {"loss"} and report.history["step"].max() == 4
    assert report.frame["gradient_difference"].notna().all()


@pytest.mark.parametrize("run_eagerly", [False, True], ids=["tf.function", "eager"])
def test_the_gradients_kept_are_those_the_train_step_hands_the_optimizer(run_eagerly):
    x, y = data(8)
    model = build(cls=ScaledSteps, compiled=False)
    model.compile(optimizer="sgd", run_eagerly=run_eagerly)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.ops.square(model(x, training=True) - y))
    expected = tape.gradient(loss, model.trainable_variables)
    gradients = FirstGradients(model, model.trainable_variables)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    kept = gradients.values()
    for got, want in zip([kept[id(v)] for v in model.trainable_variables], expected):
        np.testing.assert_allclose(got, 3.0 * want.numpy(), rtol=1e-5, atol=1e-7)


class OwnOptimizer(keras.Model):
    """Its own compile and an optimizer of its own, which its train_step applies."""

    def compile(self):
        super().compile()
        self.own_optimizer = keras.optimizers.SGD(0.1)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.own_optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


def test_a_template_with_its_own_compile_and_optimizer_is_compared_on_values():
    def build_own():
        model = build(cls=OwnOptimizer, compiled=False)
        model.compile()
        return model

    report = nbreplica.check_fidelity(build_own, *data(), batch_size=16)
    assert report.ok, str(report)
    assert report.frame["gradient_difference"].isna().all()  # model.optimizer applied none
    assert (report.frame["value_difference"] < 1e-5).all()
    losses = report.history["one_device"]
    assert losses.iloc[-1] != losses.iloc[0]  # it trained


def test_sparse_gradients_are_compared_dense():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((4,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 6)(tokens))
    model = keras.Model(tokens, keras.layers.Dense(2)(pooled))
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(2)
    x = rng.integers(0, 30, size=(24, 4)).astype("int32")
    report = nbreplica.check_fidelity(model, x, rng.normal(size=(24, 2)), batch_size=8)
    assert report.ok, str(report)


def test_documented_differences_are_found_where_they_draw():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(20, 4)(tokens)
    h = keras.layers.LSTM(5, dropout=0.2, name="lstm")(h)
    h = keras.layers.Dropout(0.0, name="no_drop")(h)
    h = keras.layers.BatchNormalization(name="frozen_bn", trainable=False)(h)
    h = keras.layers.GRU(5, name="gru")(keras.layers.Reshape((1, 5))(h))
    inner = keras.Sequential([keras.Input((5,)), keras.layers.GaussianNoise(0.1, name="noise"),
                              keras.layers.Dense(2)], name="inner")
    model = keras.Model(tokens, inner(h))
    found = [(d.layer, d.layer_class, d.kind, d.within) for d in documented_differences(model)]
    assert found == [("lstm", "LSTM", RANDOMNESS, ()),
                     ("noise", "GaussianNoise", RANDOMNESS, ("inner",))]
    images = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.RandomFlip(name="flip"),
                               keras.layers.BatchNormalization(name="bn")])
    assert [(d.layer, d.kind) for d in documented_differences(images)] == [
        ("flip", RANDOMNESS), ("bn", BATCH_STATISTICS)]


def test_relative_differences_and_thresholds():
    assert relative_difference([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert relative_difference([0.0], [1e-9]) == pytest.approx(1e-9 / FLOOR)
    assert relative_difference([10.0, 1.0], [10.0, 1.5]) == pytest.approx(0.05)
    assert relative_difference([np.inf, np.nan], [np.inf, np.nan]) == 0.0
    assert relative_difference([np.inf, 1.0], [2.0, 1.0]) == np.inf
    assert relative_difference(np.zeros(2), np.zeros(3)) == np.inf
    assert threshold_for("float32") == 1e-5 and threshold_for("float16") == 5e-3


def test_mixed_precision_uses_float16s_threshold():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        report = nbreplica.check_fidelity(build(), *data(), batch_size=16)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert report.ok and report.threshold == 5e-3, str(report)


def generator():
    yield data()


class OwnCompile(keras.Model):
    def compile(self, learning_rate):
        super().compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")


SHARED_OPTIMIZER = keras.optimizers.SGD()


def build_with(optimizer):
    model = build(compiled=False)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def own_compile():
    model = build(cls=OwnCompile, compiled=False)
    model.compile(0.1)
    return model


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: nbreplica.check_fidelity(build(), *data(), gpus=1), ValueError,
     "call `check_fidelity` with `gpus >= 2`"),
    (lambda: nbreplica.check_fidelity(build(), *data(), steps=0), ValueError,
     "steps must be >= 1. Received: steps=0"),
    (lambda: nbreplica.check_fidelity(build(), *data(), steps=True), TypeError,
     "Received: steps=True of type bool"),
    (lambda: nbreplica.check_fidelity(build(compiled=False), *data()), ValueError,
     "it must be compiled: call model.compile(...) first. Received: model='net' "
     "(compiled=False)"),
    (lambda: nbreplica.check_fidelity("net", *data()), TypeError,
     "expects a compiled Keras model, or a function without arguments that builds and "
     "compiles one. Received: model='net' of type str"),
    (lambda: nbreplica.check_fidelity(lambda: 3, *data()), TypeError,
     "builder must return a compiled Keras model. Received: model=<function"),
    (lambda: nbreplica.check_fidelity(lambda: build(compiled=False), *data()), ValueError,
     "which returned model 'net' (compiled=False)"),
    (lambda: nbreplica.check_fidelity(lambda model=build(): model, *data()), ValueError,
     "needs a new model each time"),
    (lambda: nbreplica.check_fidelity(lambda: build_with(SHARED_OPTIMIZER), *data()),
     ValueError, "needs a new optimizer each time"),
    (lambda: nbreplica.check_fidelity(own_compile(), *data()), ValueError,
     "model 'net' has its own compile. Pass a function that builds and compiles the model "
     "instead"),
    (lambda: nbreplica.check_fidelity(build(), *data(), epochs=2), ValueError,
     "it sets epochs, initial_epoch, steps_per_epoch, shuffle itself. Received: epochs=2"),
    (lambda: nbreplica.check_fidelity(build(), generator()), ValueError,
     "not a generator or iterator. Received: x=<generator"),
    (lambda: nbreplica.check_fidelity(build(), *data(20), batch_size=10), ValueError,
     "trains 3 steps, but the data held 2 batches"),
], ids=["gpus", "steps", "bool-steps", "uncompiled", "not-a-model", "builds-no-model",
        "builds-uncompiled", "builds-one-model", "builds-one-optimizer", "own-compile",
        "own-fit-argument", "generator", "short-data"])
def test_bad_input_says_what_is_wrong(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()

"""A replicated model trains, evaluates and predicts exactly like its template on one
device: for every hook a template may override, masked outputs, sparse gradients and
mixed precision. Each test builds the template twice from the same seed."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import nbreplica
from nbreplica._keras_compat import get_mask

DEVICES = [4, 8]
RTOL, ATOL = 1e-5, 1e-6


def _mlp_layers(x: keras.KerasTensor) -> keras.KerasTensor:
    return keras.layers.Dense(3)(keras.layers.Dense(8, activation="tanh")(x))


class GuideModel(keras.Model):
    """The Keras guide's "Customizing what happens in fit()" model: its own step,
    loss tracker and metric, compiled with an optimizer only; plus a step counter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
        self.steps = keras.Variable(0, trainable=False, name="steps")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = keras.losses.mean_squared_error(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.steps.assign_add(1)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


class PenalizedLoss(keras.Model):
    """Adds an output penalty in its own ``compute_loss``."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        return loss + 0.3 * keras.ops.mean(keras.ops.abs(y_pred))


class OwnTestAndPredictSteps(keras.Model):
    """Evaluates with a doubled target and predicts rounded outputs."""

    def test_step(self, data):
        x, y = data
        return super().test_step((x, 2.0 * y))

    def predict_step(self, data):
        return keras.ops.round(self(data, training=False) * 10.0)


class OwnMetrics(keras.Model):
    """Counts, in its own ``compute_metrics``, the rows whose first score is positive."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positive = keras.metrics.Sum(name="positive")

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        results = super().compute_metrics(x, y, y_pred, sample_weight)
        self.positive.update_state(keras.ops.sum(keras.ops.cast(y_pred[:, 0] > 0, "float32")))
        return {**results, "positive": self.positive.result()}


def _build(cls: type[keras.Model]) -> Callable[[], keras.Model]:
    def build() -> keras.Model:
        keras.utils.set_random_seed(0)
        x = keras.Input((5,))
        return cls(x, _mlp_layers(x))
    return build


def _data(rows: int = 22) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return (rng.normal(size=(rows, 5)).astype("float32"),
            rng.normal(size=(rows, 3)).astype("float32"))


def _fit_both(build, devices, compile_kwargs, x, y, **fit_kwargs):
    """Fit the template plainly and replicated from identical weights; returns
    (histories, templates)."""
    histories, templates = [], []
    for wrap in (False, True):
        template = build()
        model = nbreplica.replicate(template, gpus=devices) if wrap else template
        optimizer = keras.optimizers.get(compile_kwargs["optimizer"])
        fresh_optimizer = optimizer.from_config(optimizer.get_config())
        model.compile(**{**compile_kwargs, "optimizer": fresh_optimizer})
        histories.append(model.fit(x, y, shuffle=False, verbose=0, **fit_kwargs).history)
        templates.append(template)
    return histories, templates


def _assert_same_training(histories, templates, rtol=RTOL, atol=ATOL):
    plain, replicated = histories
    assert set(replicated) == set(plain)
    for name in plain:
        np.testing.assert_allclose(replicated[name], plain[name], rtol=rtol, atol=atol,
                                   err_msg=name)
    for got, want in zip(templates[1].get_weights(), templates[0].get_weights()):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_train_step_and_metrics(devices):
    x, y = _data()
    histories, templates = _fit_both(_build(GuideModel), devices, {"optimizer": "adam"},
                                     x, y, batch_size=8, epochs=2)
    assert set(histories[1]) == {"loss", "mae"}
    _assert_same_training(histories, templates)
    assert int(templates[1].steps.value) == int(templates[0].steps.value) == 6


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_compute_loss(devices):
    x, y = _data()
    compile_kwargs = {"optimizer": keras.optimizers.SGD(0.1), "loss": "mse"}
    histories, templates = _fit_both(_build(PenalizedLoss), devices, compile_kwargs,
                                     x, y, batch_size=11, epochs=2)
    _assert_same_training(histories, templates)
    parallel = nbreplica.replicate(templates[1], gpus=devices)
    parallel.compile(loss="mse")
    templates[0].compile(loss="mse")
    np.testing.assert_allclose(parallel.evaluate(x, y, verbose=0),
                               templates[0].evaluate(x, y, verbose=0), rtol=RTOL)


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_test_and_predict_steps(devices):
    x, y = _data()
    template = _build(OwnTestAndPredictSteps)()
    parallel = nbreplica.replicate(template, gpus=devices)
    for model in (template, parallel):
        model.compile(loss="mse", metrics=["mae"])
    np.testing.assert_allclose(parallel.evaluate(x, y, batch_size=7, verbose=0),
                               template.evaluate(x, y, batch_size=7, verbose=0), rtol=RTOL)
    np.testing.assert_array_equal(parallel.predict(x, batch_size=7, verbose=0),
                                  template.predict(x, batch_size=7, verbose=0))


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_compute_metrics(devices):
    x, y = _data()
    compile_kwargs = {"optimizer": keras.optimizers.SGD(0.1), "loss": "mse", "metrics": ["mae"]}
    histories, templates = _fit_both(_build(OwnMetrics), devices, compile_kwargs,
                                     x, y, batch_size=8, epochs=2)
    assert {"positive", "mae", "loss"} <= set(histories[1])
    _assert_same_training(histories, templates)


def _masked_tagger() -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(20, 4, mask_zero=True)(tokens)
    h = keras.layers.LSTM(5, return_sequences=True)(h)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(h))


def _padded_sequences(rows: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 20, size=(rows, 6))
    for row, length in enumerate(rng.integers(1, 7, size=rows)):
        x[row, length:] = 0
    return x.astype("int32"), rng.integers(0, 3, size=(rows, 6)).astype("int32")


@pytest.mark.parametrize("devices", DEVICES)
def test_masked_sequence_outputs_keep_their_mask(devices):
    x, y = _padded_sequences()
    template = _masked_tagger()
    merged = nbreplica.replicate(template, gpus=devices)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(get_mask(merged)), x != 0)
    compile_kwargs = {"optimizer": keras.optimizers.Adam(0.05),
                      "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    histories, templates = _fit_both(_masked_tagger, devices, compile_kwargs, x, y,
                                     batch_size=6, epochs=2)
    _assert_same_training(histories, templates)


def _embedding_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((4,), dtype="int32")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 6)(tokens))
    return keras.Model(tokens, keras.layers.Dense(2)(h))


@pytest.mark.parametrize("devices", DEVICES)
def test_embedding_gradients_stay_sparse_and_adam_moves_rows_like_one_device(devices):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 50, size=(10, 4)).astype("int32")
    y = rng.normal(size=(10, 2)).astype("float32")

    template = _embedding_classifier()
    parallel = nbreplica.replicate(template, gpus=devices)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(parallel(x) - y))
    table = template.layers[1].embeddings
    (grad,) = tape.gradient(loss, [table])
    assert isinstance(grad, tf.IndexedSlices)

    compile_kwargs = {"optimizer": keras.optimizers.Adam(0.1), "loss": "mse"}
    histories, templates = _fit_both(_embedding_classifier, devices, compile_kwargs, x, y,
                                     batch_size=5, epochs=2)
    _assert_same_training(histories, templates)


def test_mixed_precision_trains_like_one_device():
    x, y = _data()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        compile_kwargs = {"optimizer": keras.optimizers.SGD(0.1), "loss": "mse"}
        histories, templates = _fit_both(_build(keras.Model), 4, compile_kwargs, x, y,
                                         batch_size=8, epochs=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert templates[1].compute_dtype == "float16"
    # Each replica's weight gradient is a float16 MatMul over its rows, rounded to
    # float16 before the replicas' parts are summed (as in any data-parallel training):
    # equal to float16's precision, not float32's.
    _assert_same_training(histories, templates, rtol=2e-3, atol=1e-4)


def test_an_own_train_step_runs_eagerly_like_in_graph_mode():
    x, y = _data()
    compile_kwargs = {"optimizer": "adam", "run_eagerly": True}
    histories, templates = _fit_both(_build(GuideModel), 4, compile_kwargs, x, y,
                                     batch_size=8, epochs=1)
    _assert_same_training(histories, templates)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_gradients_reach_what_feeds_a_replicated_model(graph):
    # Data fed to a replicated model gets no gradient (none is asked for); an input
    # computed from watched values does, as through the template.
    x, _ = _data()
    template = _build(keras.Model)()
    parallel = nbreplica.replicate(template, gpus=4)
    scale = tf.Variable(np.linspace(0.5, 1.5, 5, dtype="float32"))

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x * scale)))
        return tape.gradient(loss, [scale, *template.trainable_weights])

    run = tf.function(gradients) if graph else gradients
    for got, want in zip(run(parallel), run(template)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)

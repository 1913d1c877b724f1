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
from replica_models import assert_same_training

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


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_train_step_and_metrics(devices):
    x, y = _data()
    histories, templates = _fit_both(_build(GuideModel), devices, {"optimizer": "adam"},
                                     x, y, batch_size=8, epochs=2)
    assert set(histories[1]) == {"loss", "mae"}
    assert_same_training(histories, templates)
    assert int(templates[1].steps.value) == int(templates[0].steps.value) == 6


@pytest.mark.parametrize("devices", DEVICES)
def test_a_template_with_its_own_compute_loss(devices):
    x, y = _data()
    compile_kwargs = {"optimizer": keras.optimizers.SGD(0.1), "loss": "mse"}
    histories, templates = _fit_both(_build(PenalizedLoss), devices, compile_kwargs,
                                     x, y, batch_size=11, epochs=2)
    assert_same_training(histories, templates)
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
    assert_same_training(histories, templates)


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
    assert_same_training(histories, templates)


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
    assert_same_training(histories, templates)


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
    assert_same_training(histories, templates, rtol=2e-3, atol=1e-4)


def test_an_own_train_step_runs_eagerly_like_in_graph_mode():
    x, y = _data()
    compile_kwargs = {"optimizer": "adam", "run_eagerly": True}
    histories, templates = _fit_both(_build(GuideModel), 4, compile_kwargs, x, y,
                                     batch_size=8, epochs=1)
    assert_same_training(histories, templates)


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


class PositionEmbedding(keras.layers.Layer):
    """keras.io's ``TokenAndPositionEmbedding`` position half: an Embedding looked up
    with ``ops.arange`` (indices that do not depend on the batch), added to tokens'."""

    def __init__(self, length, vocabulary, width, **kwargs):
        super().__init__(**kwargs)
        self.tokens = keras.layers.Embedding(vocabulary, width)
        self.positions = keras.layers.Embedding(length, width)

    def call(self, x):
        length = keras.ops.shape(x)[-1]
        return self.tokens(x) + self.positions(keras.ops.arange(0, length))


def _position_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((5,), dtype="int32")
    h = keras.layers.GlobalAveragePooling1D()(PositionEmbedding(5, 9, 4)(tokens))
    return keras.Model(tokens, keras.layers.Dense(2)(h))


@pytest.mark.parametrize("devices", DEVICES)
@pytest.mark.parametrize("run_eagerly", [False, True], ids=["graph", "eager"])
def test_position_embeddings_get_one_device_rows_and_adam_trains_alike(devices, run_eagerly):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 9, size=(16, 5)).astype("int32")
    y = rng.normal(size=(16, 2)).astype("float32")
    compile_kwargs = {"optimizer": keras.optimizers.Adam(0.05), "loss": "mse",
                      "run_eagerly": run_eagerly}
    histories, templates = _fit_both(_position_model, devices, compile_kwargs, x, y,
                                     batch_size=8, epochs=2)
    assert_same_training(histories, templates)


class PerSampleLoss(keras.layers.Layer):
    """keras.io captcha_ocr's CTC endpoint pattern: ``add_loss`` of a ``(batch, 1)``
    per-sample loss, which Keras sums."""

    def call(self, y_true, y_pred):
        self.add_loss(keras.ops.sum(keras.ops.square(y_true - y_pred), axis=1, keepdims=True))
        return y_pred


def _endpoint_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    x, target = keras.Input((5,), name="x"), keras.Input((3,), name="target")
    return keras.Model([x, target], PerSampleLoss()(target, _mlp_layers(x)))


@pytest.mark.parametrize("devices", DEVICES)
def test_a_per_sample_added_loss_is_summed_as_keras_sums_it(devices):
    x, y = _data()
    template = _endpoint_model()
    parallel = nbreplica.replicate(template, gpus=devices)
    for model in (template, parallel):
        model.compile(optimizer=keras.optimizers.SGD(0.01))
    np.testing.assert_allclose(parallel.evaluate([x, y], verbose=0, batch_size=11),
                               template.evaluate([x, y], verbose=0, batch_size=11), rtol=RTOL)
    compile_kwargs = {"optimizer": keras.optimizers.SGD(0.01)}
    histories, templates = _fit_both(_endpoint_model, devices, compile_kwargs, [x, y], None,
                                     batch_size=7, epochs=2)
    assert_same_training(histories, templates)


class TinyGan(keras.Model):
    """The keras.io GAN pattern (dcgan.py, wgan_gp.py): its own ``compile(d_optimizer,
    g_optimizer, loss_fn)`` and a ``train_step`` that calls its generator and
    discriminator, never ``self``; with wgan_gp's gradient penalty (a gradient of a
    gradient) when ``penalty`` is set."""

    def __init__(self, penalty=0.0):
        super().__init__()
        self.penalty = penalty
        z, image = keras.Input((3,)), keras.Input((4,))
        self.generator = keras.Model(z, keras.layers.Dense(4, activation="tanh")(z))
        self.discriminator = keras.Model(image, keras.layers.Dense(1)(
            keras.layers.Dense(6, activation="tanh")(image)))
        self.seed_generator = keras.random.SeedGenerator(7)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def call(self, z):
        return self.generator(z)

    def _gradient_penalty(self, real, fake):
        alpha = keras.random.uniform((keras.ops.shape(real)[0], 1), seed=self.seed_generator)
        mixed = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            score = self.discriminator(mixed, training=True)
        grads = tape.gradient(score, [mixed])[0]
        return keras.ops.mean((keras.ops.sqrt(keras.ops.sum(grads ** 2, axis=1)) - 1.0) ** 2)

    def train_step(self, real):
        batch = keras.ops.shape(real)[0]
        z = keras.random.normal((batch, 3), seed=self.seed_generator)
        labels = keras.ops.concatenate([keras.ops.ones((batch, 1)), keras.ops.zeros((batch, 1))])
        with tf.GradientTape() as tape:
            fake = self.generator(z)
            scores = self.discriminator(keras.ops.concatenate([fake, real]))
            d_loss = self.loss_fn(labels, scores)
            if self.penalty:
                d_loss += self.penalty * self._gradient_penalty(real, fake)
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights))
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(keras.ops.zeros((batch, 1)),
                                  self.discriminator(self.generator(z)))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def _fit_gans(devices, penalty, compile_replicated=True):
    x = np.random.default_rng(6).normal(size=(12, 4)).astype("float32")
    histories, templates = [], []
    for wrap in (False, True):
        keras.utils.set_random_seed(0)
        template = TinyGan(penalty)
        template.build((None, 3))
        model = nbreplica.replicate(template, gpus=devices) if wrap else template
        compiled = model if compile_replicated else template
        compiled.compile(d_optimizer=keras.optimizers.Adam(0.01),
                         g_optimizer=keras.optimizers.Adam(0.01),
                         loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
        histories.append(model.fit(x, batch_size=6, epochs=2, shuffle=False, verbose=0).history)
        templates.append(template)
    return histories, templates


@pytest.mark.parametrize("devices", DEVICES)
@pytest.mark.parametrize("penalty", [0.0, 10.0], ids=["gan", "gradient-penalty"])
def test_a_gan_with_its_own_compile_and_sub_model_steps_trains_like_one_device(devices,
                                                                               penalty):
    assert_same_training(*_fit_gans(devices, penalty))


class NoiseAndCount(keras.layers.Layer):
    """``x * u``, ``u`` drawn uniformly at every call; counts its calls in a
    non-trainable variable (the way ``BatchNormalization`` updates its averages)."""

    def __init__(self):
        super().__init__()
        self.seed_generator = keras.random.SeedGenerator(5)
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        self.calls.assign_add(1.0)
        return x * keras.random.uniform(keras.ops.shape(x), seed=self.seed_generator)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_a_gradient_penalty_replays_the_replicas_it_runs_again(traced):
    """The gradient of ``sum(x * u)`` is ``u``: the backward pass a recording tape
    needs runs the replicas again, which must draw the ``u`` their first pass drew
    and leave the state their first pass left (one update per replica)."""
    x_in = keras.Input((3,))
    layer = NoiseAndCount()
    parallel = nbreplica.replicate(keras.Model(x_in, layer(x_in)), gpus=2)
    x = tf.constant(np.random.default_rng(1).uniform(1.0, 2.0, (4, 3)), tf.float32)

    def penalized_gradient(x):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = parallel(x, training=True)
                total = tf.reduce_sum(y)
            gradient = inner.gradient(total, x)
            penalty = tf.reduce_sum(gradient ** 2)
        # u does not depend on x: the penalty's gradient is zero, once computed.
        return y, gradient, outer.gradient(penalty, x, unconnected_gradients="zero")

    y, gradient, penalty_gradient = (tf.function(penalized_gradient) if traced
                                     else penalized_gradient)(x)
    np.testing.assert_allclose(gradient.numpy(), (y / x).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(penalty_gradient.numpy(), np.zeros((4, 3)))
    assert float(layer.calls.numpy()) == 2.0  # once per replica, not once more per rerun


def test_replicating_a_compiled_template_keeps_its_compile_state():
    histories, templates = _fit_gans(4, 0.0, compile_replicated=False)
    assert_same_training(histories, templates)
    assert nbreplica.replicate(templates[1], gpus=2).optimizer is templates[1].optimizer


def _text_model() -> keras.Model:
    """The TensorFlow text classification tutorial's shape: strings in, vectorized in
    the model (padded to each batch's longest text), masked padding, an LSTM."""
    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=None)
    vectorize.adapt(["the cat sat", "a dog ran far", "the dog"])
    text = keras.Input((), dtype="string")
    h = keras.layers.Embedding(20, 4, mask_zero=True)(vectorize(text))
    return keras.Model(text, keras.layers.Dense(1)(keras.layers.LSTM(3)(h)))


def test_a_string_batch_smaller_than_the_device_count_gives_the_templates_result():
    template = _text_model()
    parallel = nbreplica.replicate(template, gpus=4)
    sample = tf.constant(["the cat ran far"])
    np.testing.assert_allclose(parallel.predict(sample, verbose=0),
                               template.predict(sample, verbose=0), rtol=RTOL, atol=ATOL)
    text = tf.constant(["the cat sat", "a dog", "far", "the dog ran", "a cat"])
    labels = np.arange(5, dtype="float32").reshape(5, 1)
    histories, templates = _fit_both(_text_model, 4, {"optimizer": "adam", "loss": "mse"},
                                     text, labels, batch_size=4, epochs=2)  # last batch: 1 row
    assert_same_training(histories, templates)


def test_a_model_without_inputs_runs_once_unsplit():
    bias = keras.layers.Dense(1)
    bias.build((1, 1))
    template = keras.Sequential([keras.layers.Lambda(lambda x: bias.kernel[0])])
    template.build(())
    parallel = nbreplica.replicate(template, gpus=4)
    np.testing.assert_allclose(parallel(tf.constant(0.0)), template(tf.constant(0.0)))
    assert tuple(parallel(tf.constant(0.0)).shape) == (1,)


def test_ragged_inputs_split_by_rows():
    keras.utils.set_random_seed(0)
    embed = keras.layers.Embedding(10, 3)

    class BagOfTokens(keras.Model):
        def call(self, tokens):
            return keras.ops.convert_to_tensor(tf.reduce_mean(embed(tokens), axis=1))

    template = BagOfTokens()
    tokens = tf.ragged.constant([[1, 2, 3], [4], [5, 6], [7, 8, 9, 1], [2]])
    template(tokens)
    parallel = nbreplica.replicate(template, gpus=3)
    np.testing.assert_allclose(parallel(tokens), template(tokens), rtol=RTOL, atol=ATOL)


def _dropout_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((64,))
    return keras.Model(x, keras.layers.Dropout(0.5, seed=3)(x))


def test_random_layers_draw_independently_per_replica_reproducibly():
    x = np.ones((8, 64), "float32")
    parallel = nbreplica.replicate(_dropout_model(), gpus=4)
    keras.utils.set_random_seed(1)
    masks = parallel(x, training=True).numpy() != 0
    rows = [masks[2 * r] for r in range(4)]  # the first row of each replica
    assert all(not np.array_equal(rows[a], rows[b]) for a in range(4) for b in range(a))
    np.testing.assert_array_equal(parallel(x, training=False), x)

    again = nbreplica.replicate(_dropout_model(), gpus=4)
    keras.utils.set_random_seed(1)
    np.testing.assert_array_equal(again(x, training=True).numpy() != 0, masks)


class RawOpsStep(keras.Model):
    """A step of raw TensorFlow ops that never calls a model: nothing to split."""

    def train_step(self, data):
        x, y = data
        kernel = self.layers[1].kernel
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.matmul(x, kernel) - y))
        self.optimizer.apply_gradients([(tape.gradient(loss, kernel), kernel)])
        return {"loss": loss}


def test_a_step_that_splits_nothing_says_so_at_its_first_step():
    keras.utils.set_random_seed(0)
    x_in = keras.Input((5,))
    parallel = nbreplica.replicate(RawOpsStep(x_in, keras.layers.Dense(3)(x_in)), gpus=2)
    parallel.compile(optimizer="sgd")
    x, y = _data()
    with pytest.warns(UserWarning, match="none of its work was split"):
        parallel.fit(x, y, epochs=1, verbose=0)


def test_sparse_inputs_split_by_rows():
    keras.utils.set_random_seed(0)
    x_in = keras.Input((6,), sparse=True)
    template = keras.Model(x_in, keras.layers.Dense(2)(x_in))
    dense = np.zeros((5, 6), "float32")
    dense[[0, 1, 3, 4], [2, 0, 5, 1]] = [1.0, 2.0, 3.0, 4.0]
    sparse = tf.sparse.from_dense(dense)
    parallel = nbreplica.replicate(template, gpus=3)
    np.testing.assert_allclose(parallel(sparse), template(sparse), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("activation", ["softmax", "raw-op"])
def test_cross_entropy_reads_the_merged_logits_of_a_softmax_output(from_logits, activation):
    # Keras's cross-entropy reads a softmax output's logits (`_keras_logits`, or the
    # Softmax op's input), also with from_logits=True; saturated outputs show it.
    def build():
        keras.utils.set_random_seed(0)
        x = keras.Input((3,))
        if activation == "softmax":
            return keras.Model(x, keras.layers.Dense(4, activation="softmax")(x))
        return keras.Model(x, keras.layers.Lambda(tf.nn.softmax)(keras.layers.Dense(4)(x)))

    rng = np.random.default_rng(0)
    x, y = 50 * rng.random((8, 3)).astype("float32"), np.arange(8) % 4
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    histories, templates = _fit_both(build, 4, {"optimizer": "sgd", "loss": loss}, x, y,
                                     batch_size=8, epochs=2)
    assert_same_training(histories, templates)

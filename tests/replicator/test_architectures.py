"""Model shapes that broke the original: multi-input/output, nested, Siamese, RNN
initial states, BatchNormalization, scalar outputs, add_loss."""

import keras
import numpy as np
import pytest

import nbreplica

RNG = np.random.default_rng(7)


def _data(*shapes):
    return [RNG.normal(size=s).astype("float32") for s in shapes]


def test_multi_input_multi_output_with_loss_dict_by_output_name():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    out_1 = keras.layers.Dense(2, name="first")(joined)
    out_2 = keras.layers.Dense(1, name="second")(joined)
    template = keras.Model([a, b], [out_1, out_2])
    parallel = nbreplica.replicate(template, gpus=3)
    xa, xb, y1, y2 = _data((11, 4), (11, 3), (11, 2), (11, 1))

    for got, want in zip(parallel.predict([xa, xb], verbose=0),
                         template.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    parallel.compile(optimizer="sgd", loss={"first": "mse", "second": "mae"})
    history = parallel.fit([xa, xb], {"first": y1, "second": y2}, batch_size=5, verbose=0)
    assert {"first_loss", "second_loss"} <= set(history.history)


def test_dict_inputs():
    keras.utils.set_random_seed(0)
    inputs = {"left": keras.Input((2,), name="left"), "right": keras.Input((2,), name="right")}
    template = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Add()(list(inputs.values()))))
    x = {"left": _data((9, 2))[0], "right": _data((9, 2))[0]}
    np.testing.assert_allclose(nbreplica.replicate(template, 4).predict(x, verbose=0),
                               template.predict(x, verbose=0), atol=1e-5)


def test_nested_model():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh")])
    x_in = keras.Input((5,))
    template = keras.Model(x_in, keras.layers.Dense(2)(inner(x_in)))
    (x,) = _data((10, 5))
    np.testing.assert_allclose(nbreplica.replicate(template, 4).predict(x, verbose=0),
                               template.predict(x, verbose=0), atol=1e-5)


def test_siamese_model_with_repeated_outputs_gets_unique_output_names():
    keras.utils.set_random_seed(0)
    shared = keras.layers.Dense(3, name="shared")
    left, right = keras.Input((4,)), keras.Input((4,))
    template = keras.Model([left, right], [shared(left), shared(right)])
    parallel = nbreplica.replicate(template, gpus=2)
    assert len(set(parallel.output_names)) == 2
    xl, xr, y = _data((8, 4), (8, 4), (8, 3))
    for got, want in zip(parallel.predict([xl, xr], verbose=0),
                         template.predict([xl, xr], verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    parallel.compile(optimizer="sgd", loss=["mse", "mse"])
    assert np.isfinite(parallel.fit([xl, xr], [y, y], verbose=0).history["loss"][0])


def test_rnn_with_initial_state_inputs():
    keras.utils.set_random_seed(0)
    seq, state = keras.Input((6, 3)), keras.Input((5,))
    template = keras.Model([seq, state], keras.layers.GRU(5)(seq, initial_state=state))
    xs, xh, y = _data((9, 6, 3), (9, 5), (9, 5))
    parallel = nbreplica.replicate(template, gpus=4)
    np.testing.assert_allclose(parallel.predict([xs, xh], verbose=0),
                               template.predict([xs, xh], verbose=0), atol=1e-5)
    parallel.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(parallel.train_on_batch([xs, xh], y))


def test_batch_normalization_uses_per_replica_statistics():
    keras.utils.set_random_seed(0)
    x_in = keras.Input((3,))
    template = keras.Model(x_in, keras.layers.BatchNormalization(momentum=0.5)(x_in))
    parallel = nbreplica.replicate(template, gpus=2)
    x = np.array([[0.0] * 3, [2.0] * 3, [10.0] * 3, [14.0] * 3], "float32")
    out = parallel(x, training=True).numpy()
    # Each half is normalised with its own mean (1 and 12), not the batch's (6.5).
    np.testing.assert_allclose(out[:, 0], [-1, 1, -1, 1], atol=1e-2)
    # Two moving-average updates per step: 0.5 ** 2 of the initial 0 remains.
    moving_mean = template.layers[-1].moving_mean.numpy()[0]
    assert moving_mean == pytest.approx(0.5 * (0.5 * 0 + 0.5 * 1) + 0.5 * 12, abs=1e-4)


def test_scalar_output_is_the_batch_weighted_mean():
    keras.utils.set_random_seed(0)
    x_in = keras.Input((2,))
    template = keras.Model(x_in, keras.layers.Lambda(lambda t: keras.ops.mean(t))(x_in))
    (x,) = _data((7, 2))
    out = nbreplica.replicate(template, gpus=3)(x)
    assert out.shape == ()
    assert float(out) == pytest.approx(float(x.mean()), abs=1e-5)


class _ActivityPenalty(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(keras.ops.mean(keras.ops.square(inputs)))
        return inputs


def test_add_loss_and_activity_regularizers_are_weighted_by_batch_share():
    x, y = _data((10, 4), (10, 2))
    totals = []
    weights = []
    for wrap in (False, True):
        keras.utils.set_random_seed(4)
        x_in = keras.Input((4,))
        h = keras.layers.Dense(3, activity_regularizer="l2", kernel_regularizer="l2")(x_in)
        template = keras.Model(x_in, keras.layers.Dense(2)(_ActivityPenalty()(h)))
        model = nbreplica.replicate(template, gpus=3) if wrap else template
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        totals.append(model.evaluate(x, y, batch_size=10, verbose=0))
        model.train_on_batch(x, y)
        weights.append(template.get_weights())
    assert totals[1] == pytest.approx(totals[0], rel=1e-5)
    for got, want in zip(*weights):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_an_output_without_loss_gets_no_gradient():
    keras.utils.set_random_seed(0)
    x_in = keras.Input((4,))
    trained = keras.layers.Dense(2, name="trained")(x_in)
    ignored = keras.layers.Dense(2, name="ignored")(x_in)
    template = keras.Model(x_in, {"trained": trained, "ignored": ignored})
    before = template.get_layer("ignored").get_weights()
    parallel = nbreplica.replicate(template, gpus=2)
    parallel.compile(optimizer="sgd", loss={"trained": "mse"})
    x, y = _data((6, 4), (6, 2))
    parallel.train_on_batch(x, {"trained": y})
    for got, want in zip(template.get_layer("ignored").get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_synchronized_batch_normalization_warns_that_statistics_are_per_replica():
    x_in = keras.Input((3,))
    normalized = keras.layers.BatchNormalization(synchronized=True, name="bn")(x_in)
    template = keras.Model(x_in, normalized)
    with pytest.warns(UserWarning, match=r"per replica.*synchronized=True.*\['bn'\]"):
        nbreplica.replicate(template, gpus=2)

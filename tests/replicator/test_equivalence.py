"""The replicated model computes what its template computes."""

import keras
import numpy as np
import pytest

import nbreplica
from replica_models import make_convnet, make_mlp, random_data

BATCH_SIZES = [1, 3, 7, 13, 64, 1001]


@pytest.mark.parametrize("devices", range(2, 9))
def test_predict_equals_template_for_every_batch_size(devices):
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=devices)
    for batch in BATCH_SIZES:
        x, _ = random_data(batch, seed=batch)
        expected = template.predict(x, batch_size=batch, verbose=0)
        got = parallel.predict(x, batch_size=batch, verbose=0)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"batch={batch}")


def test_convnet_predict_with_batches_smaller_than_the_device_count():
    template = make_convnet()
    parallel = nbreplica.replicate(template, gpus=8)
    x = np.random.default_rng(0).normal(size=(19, 12, 12, 3)).astype("float32")
    for batch in (1, 3, 7, 19):
        np.testing.assert_allclose(
            parallel.predict(x[:batch], batch_size=batch, verbose=0),
            template.predict(x[:batch], batch_size=batch, verbose=0), atol=1e-5)


def test_empty_batch_gives_an_empty_result():
    template = make_convnet()
    parallel = nbreplica.replicate(template, gpus=8)
    out = parallel(np.zeros((0, 12, 12, 3), "float32"))
    assert tuple(out.shape) == (0, 5)


def _one_sgd_step(model: keras.Model, x, y) -> list[np.ndarray]:
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(x, y)


@pytest.mark.parametrize("devices,rows", [(2, 64), (3, 13), (8, 64), (8, 5)])
def test_one_sgd_step_leaves_the_same_weights_as_the_template(devices, rows):
    x, y = random_data(rows)
    reference = make_mlp(seed=3)
    _one_sgd_step(reference, x, y)

    template = make_mlp(seed=3)
    _one_sgd_step(nbreplica.replicate(template, gpus=devices), x, y)

    before = make_mlp(seed=3).get_weights()
    for got, want, start in zip(template.get_weights(), reference.get_weights(), before):
        assert not np.allclose(want, start), "the step must change the weights"
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_sample_weights_and_a_partial_last_batch_train_like_the_template():
    x, y = random_data(21)
    weights = np.linspace(0.0, 2.0, 21).astype("float32")
    results = []
    for wrap in (False, True):
        template = make_mlp(seed=5)
        model = nbreplica.replicate(template, gpus=4) if wrap else template
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, sample_weight=weights, batch_size=8, epochs=2, shuffle=False,
                  verbose=0)
        results.append(template.get_weights())
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, atol=1e-5)

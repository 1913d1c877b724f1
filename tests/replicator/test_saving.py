"""Saving: the template after training, the replicated model itself, checkpoints,
and relocation of the weights to the CPU."""

import keras
import numpy as np
import tensorflow as tf

import nbreplica
from replica_models import make_mlp, random_data


def _trained(devices=4, callbacks=()):
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=devices)
    parallel.compile(optimizer="adam", loss="mse")
    x, y = random_data(32)
    parallel.fit(x, y, batch_size=8, epochs=2, callbacks=list(callbacks), verbose=0)
    return template, parallel, x


def test_the_trained_template_saves_as_keras_and_h5(tmp_path):
    template, _, x = _trained()
    for name in ("my_model.keras", "my_model.h5"):
        template.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name, compile=False)
        assert not isinstance(loaded, nbreplica.ReplicatedModel)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), template.predict(x, verbose=0),
                                   atol=1e-6)


def test_the_replicated_model_round_trips_with_its_optimizer_state(tmp_path):
    _, parallel, x = _trained(devices=3)
    parallel.save(tmp_path / "parallel.keras")
    loaded = keras.models.load_model(tmp_path / "parallel.keras")

    assert isinstance(loaded, nbreplica.ReplicatedModel)
    assert loaded.devices == parallel.devices
    assert int(loaded.optimizer.iterations) == int(parallel.optimizer.iterations) == 8
    np.testing.assert_allclose(loaded.predict(x, verbose=0), parallel.predict(x, verbose=0),
                               atol=1e-6)
    for a, b in zip(loaded.optimizer.variables, parallel.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_template_checkpoint_writes_a_plain_keras_model(tmp_path):
    path = tmp_path / "best.keras"
    template, _, x = _trained(callbacks=[nbreplica.TemplateCheckpoint(path, monitor="loss")])
    loaded = keras.models.load_model(path, compile=False)
    assert type(loaded) is keras.Model or loaded.__class__.__name__ == "Functional"
    assert loaded.name == template.name
    np.testing.assert_allclose(loaded.predict(x, verbose=0), template.predict(x, verbose=0),
                               atol=1e-6)


def test_template_checkpoint_on_a_plain_model_behaves_like_model_checkpoint(tmp_path):
    model = make_mlp()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(*random_data(8), callbacks=[nbreplica.TemplateCheckpoint(tmp_path / "m.keras")],
              verbose=0)
    assert (tmp_path / "m.keras").stat().st_size > 0


def test_cpu_relocation_moves_the_weights_and_keeps_their_values():
    with tf.device("/device:CPU:5"):
        template = make_mlp(seed=11)
    assert all(v.value.device.endswith("CPU:5") for v in template.weights)
    x, y = random_data(9)
    expected = template.predict(x, verbose=0)

    parallel = nbreplica.replicate(template, gpus=4, cpu_relocation=True)

    assert all(v.value.device.endswith("CPU:0") for v in template.weights)
    np.testing.assert_allclose(parallel.predict(x, verbose=0), expected, atol=1e-6)
    parallel.compile(optimizer="sgd", loss="mse")
    parallel.train_on_batch(x, y)
    assert not np.allclose(template.predict(x, verbose=0), expected)


def test_a_saved_replicated_model_keeps_its_shares_and_their_source(tmp_path):
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=3, shares=[2, 1, 1])
    parallel.compile(optimizer="adam", loss="mse")
    x, y = random_data(24)
    parallel.fit(x, y, batch_size=12, epochs=1, verbose=0)
    parallel.save(tmp_path / "shared.keras")
    loaded = keras.models.load_model(tmp_path / "shared.keras")
    assert loaded.shares == parallel.shares == (0.5, 0.25, 0.25)
    assert loaded.shares_source == "given"
    np.testing.assert_allclose(loaded.predict(x, batch_size=12, verbose=0),
                               parallel.predict(x, batch_size=12, verbose=0), atol=1e-6)

    auto = nbreplica.replicate(make_mlp(), gpus=2, shares="auto")
    auto.save(tmp_path / "auto.keras")
    reloaded = keras.models.load_model(tmp_path / "auto.keras")  # no new calibration
    assert reloaded.shares == auto.shares and reloaded.shares_source == "calibration"

    _, plain, _ = _trained(devices=2)
    plain.save(tmp_path / "even.keras")
    even = keras.models.load_model(tmp_path / "even.keras")
    assert even.get_config()["shares"] is None
    assert even.shares == (0.5, 0.5) and even.shares_source == "even"

"""The replicated model works with the whole Keras training API."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import nbreplica
from replica_models import make_mlp, random_data


def _compiled(devices=4, **compile_kwargs):
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=devices)
    parallel.compile(optimizer="adam", loss="mse", metrics=["mae"], **compile_kwargs)
    return template, parallel


def test_fit_with_validation_callbacks_and_history():
    template, parallel = _compiled()
    x, y = random_data(40)
    seen_epochs = []
    history = parallel.fit(
        x, y, batch_size=16, epochs=3, validation_data=random_data(10, seed=9),
        callbacks=[keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: seen_epochs.append(epoch))],
        verbose=0)
    assert seen_epochs == [0, 1, 2]
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_on_a_tf_data_dataset_trains_the_template():
    template, parallel = _compiled()
    before = [w.copy() for w in template.get_weights()]
    x, y = random_data(30)
    parallel.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(7), epochs=1, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, template.get_weights()))


def test_evaluate_matches_the_template():
    template, parallel = _compiled()
    template.compile(loss="mse", metrics=["mae"])
    x, y = random_data(50)
    np.testing.assert_allclose(parallel.evaluate(x, y, batch_size=9, verbose=0),
                               template.evaluate(x, y, batch_size=9, verbose=0), rtol=1e-5)


def test_batch_level_methods_and_summary(capsys):
    template, parallel = _compiled(devices=3)
    x, y = random_data(10)
    loss, mae = parallel.train_on_batch(x, y)
    assert np.isfinite(loss) and np.isfinite(mae)
    test_loss, _ = parallel.test_on_batch(x, y)
    assert np.isfinite(test_loss)
    np.testing.assert_allclose(parallel.predict_on_batch(x), template.predict_on_batch(x),
                               atol=1e-5)
    parallel.summary()
    assert "mlp" in capsys.readouterr().out


def test_run_eagerly_trains_like_graph_mode():
    x, y = random_data(24)
    results = []
    for eager in (False, True):
        template = make_mlp(seed=2)
        parallel = nbreplica.replicate(template, gpus=4)
        parallel.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", run_eagerly=eager)
        parallel.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
        results.append(template.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_jit_compile_is_kept_off():
    _, auto = _compiled(jit_compile="auto")
    assert auto.jit_compile is False
    template = make_mlp()
    parallel = nbreplica.replicate(template, gpus=2)
    with pytest.warns(UserWarning, match="jit_compile"):
        parallel.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert parallel.jit_compile is False


def test_turning_jit_compile_on_says_why_it_stays_off():
    parallel = nbreplica.replicate(make_mlp(), gpus=2)
    for turn_on in (lambda: parallel.compile(optimizer="sgd", loss="mse", jit_compile=True),
                    lambda: setattr(parallel, "jit_compile", True)):
        with pytest.warns(UserWarning) as caught:
            turn_on()
        (warning,) = caught
        message = str(warning.message)
        assert message.startswith("A replicated model does not run under XLA: XLA compiles "
                                  "the whole training step into one cluster on one device")
        assert "leave jit_compile unset (or False)" in message
        assert message.endswith("Received: jit_compile=True")
        assert warning.filename == __file__  # the caller's line, not Keras's
        assert parallel.jit_compile is False


def test_gpus_none_uses_the_selected_devices_else_all():
    template = make_mlp()
    assert nbreplica.replicate(template).devices == [f"/device:CPU:{i}" for i in range(1, 9)]
    nbreplica.use_devices([5, 2])
    try:
        assert nbreplica.replicate(template).devices == ["/device:CPU:3", "/device:CPU:6"]
    finally:
        nbreplica.use_devices(None)
    assert nbreplica.replicate(template, [4, 0, 2]).devices == [
        "/device:CPU:5", "/device:CPU:1", "/device:CPU:3"]


def test_multi_gpu_model_is_the_same_function_with_the_original_argument_order():
    template = make_mlp()
    parallel = nbreplica.multi_gpu_model(template, 2, False, False)
    assert nbreplica.multi_gpu_model is nbreplica.replicate
    assert parallel.merge_device == parallel.devices[0] == "/device:CPU:1"
    assert nbreplica.replicate(template, 2).merge_device == "/device:CPU:0"

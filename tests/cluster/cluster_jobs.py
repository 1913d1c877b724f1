"""Functions the cluster tests run in worker processes, and the model and data they
train (the reference training in the test process uses the same)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 7
GLOBAL_BATCH = 16
EPOCHS = 3


def make_model() -> Any:
    import keras

    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return model


def make_dataset() -> Any:
    import tensorflow as tf

    rows = np.random.default_rng(SEED)
    x = rows.normal(size=(96, 6)).astype("float32")
    y = (x @ rows.normal(size=(6, 1))).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)


def fit(model: Any) -> list[float]:
    return model.fit(make_dataset(), epochs=EPOCHS, verbose=0).history["loss"]


def assert_trained_like(results: list[dict[str, Any]], losses: list[float],
                        weights: list[np.ndarray]) -> None:
    """Every worker's ``train_everything`` result has ``losses`` and ``weights``."""
    for result in results:
        assert len(result["loss"]) == EPOCHS
        np.testing.assert_allclose(result["loss"], losses, rtol=0, atol=1e-6)
        for got, expected in zip(result["weights"], weights):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert losses[-1] < losses[0]


def assert_chiefs_model_came_back(results: list[dict[str, Any]]) -> None:
    """The chief's ``train_everything`` result holds its trained Keras model."""
    import keras

    model = results[0]["model"]
    assert isinstance(model, keras.Model)
    for got, expected in zip(model.get_weights(), results[0]["weights"]):
        np.testing.assert_array_equal(got, expected)


def write_pid(folder: str) -> None:
    import nbreplica.cluster

    index = nbreplica.cluster.context().index
    (Path(folder) / f"pid-{index}").write_text(str(os.getpid()))


def what_keras_says_uncorrected(correction: str) -> str:
    """The error Keras raises when a 2-worker fit runs without ``correction``."""
    from nbreplica._keras_compat import multiworker_fit

    with multiworker_fit.uncorrected(correction):
        try:
            fit(make_model())
        except Exception as error:  # what Keras raises is what the test checks
            return f"{type(error).__name__}: {error}"
    return "fit trained without the correction"


def train_everything(folder: str) -> dict[str, Any]:
    """Where the worker stands, a trained model, which files each worker wrote when
    all of them saved, and what Keras does without the correction."""
    import keras
    import tensorflow as tf

    import nbreplica
    import nbreplica.cluster

    write_pid(folder)
    here = nbreplica.cluster.context()
    model = make_model()
    own = Path(folder) / f"worker-{here.index}"
    own.mkdir()
    os.chdir(own)
    history = model.fit(make_dataset(), epochs=EPOCHS, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint("checkpoint.keras"),
        nbreplica.TemplateCheckpoint("template.weights.h5", save_weights_only=True),
    ])
    model.save("model.keras")
    # Last: a failed step can leave the workers' collectives out of step.
    watch = {name: what_keras_says_uncorrected(name)
             for name in ("reduce_per_replica", "symbolic_build")}
    return {
        "index": here.index, "num_workers": here.num_workers, "is_chief": here.is_chief,
        "multi_worker": isinstance(here.strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "replicas": here.strategy.num_replicas_in_sync,
        "cluster": json.loads(os.environ["TF_CONFIG"])["cluster"],
        "watch": watch,
        "loss": history.history["loss"],
        "weights": [w.numpy() for w in model.weights],
        "model": model,
    }


def fail_in_worker_1(folder: str) -> None:
    import nbreplica.cluster

    write_pid(folder)
    if nbreplica.cluster.context().index == 1:
        # Fail once every worker has started, so that the test knows all their pids.
        deadline = time.monotonic() + 60
        while len(list(Path(folder).glob("pid-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("worker 1 gives up on purpose")
    fit(make_model())


def train_more_steps_in_worker_1() -> None:
    import nbreplica.cluster

    steps = 2 + 2 * nbreplica.cluster.context().index
    make_model().fit(make_dataset().repeat(), epochs=1, steps_per_epoch=steps, verbose=0)


def sleep_forever(folder: str) -> None:
    write_pid(folder)
    time.sleep(600)


def chief_returns_its_index() -> int:
    import nbreplica.cluster

    here = nbreplica.cluster.context()
    print(f"worker {here.index} of {here.num_workers} trained, loss {fit(make_model())[-1]:.4f}")
    return here.index


def exit_instead_of_returning(how: str) -> None:
    """End the worker's process from inside its function, as ``how`` says."""
    if how == "sys.exit":
        sys.exit(0)
    os._exit(0)


def remove_then_return(folder: str) -> int:
    """Train, remove ``folder`` (where the result was to go), and return 42."""
    fit(make_model())
    shutil.rmtree(folder)
    return 42


def hang_in_worker_1(folder: str) -> None:
    """Both workers build the model; then worker 1 hangs (writing its pid first) while
    worker 0 trains."""
    import nbreplica.cluster

    model = make_model()
    if nbreplica.cluster.context().index == 1:
        sleep_forever(folder)
    fit(model)

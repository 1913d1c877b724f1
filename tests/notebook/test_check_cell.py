"""``%%replicate --check``: the cell runs as ``%%replicate`` runs it, then each model
its ``fit`` calls trained is checked and its verdict printed (8 emulated GPUs: see
tests/conftest.py)."""

from __future__ import annotations

import re

import keras
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

SETUP = """
import keras, numpy as np

class BatchCentering(keras.layers.Layer):
    def call(self, inputs):
        return inputs - keras.ops.mean(inputs, axis=0, keepdims=True)

def build(name, *middle):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    for layer in middle:
        h = layer(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="scores")(h), name=name)
    model.compile("adam", "mse")
    return model

rng = np.random.default_rng(0)
x = rng.standard_normal((100, 8), dtype=np.float32)
y = rng.standard_normal((100, 2), dtype=np.float32)
"""


@pytest.fixture(autouse=True)
def namespace(shell):
    shell.reset(new_session=False)
    assert shell.run_cell(SETUP).success
    yield
    assert "fit" not in keras.Model.__dict__


def run(shell, line: str, body: str):
    with capture_output() as captured:
        result = shell.run_cell(f"%%replicate {line}\n{body}")
    return result, captured


def test_check_prints_one_verdict_per_trained_model_after_the_cell(shell):
    body = ("clean = build('clean')\n"
            "history = clean.fit(x, y, epochs=2, batch_size=20, verbose=0)\n"
            "clean.fit(x, y, epochs=1, batch_size=50, verbose=0)\n"
            "centered = build('centered', BatchCentering(name='centering'))\n"
            "centered.fit(x, y, batch_size=25, verbose=0)\n"
            "print('cell done')")
    result, captured = run(shell, "-n 4 --check", body)
    assert result.success, captured.stdout
    lines = captured.stdout.splitlines()
    assert lines[0] == "cell done"
    assert re.fullmatch(r"Model 'clean' trains like one device: max relative difference \S+ "
                        r"over 4 weights and 1 metric in 3 steps on 4 devices; rounding "
                        r"threshold 1e-5", lines[1])
    assert lines[2].startswith("Model 'centered' differs from one device: outputs first "
                               "differ in centering; gradients or values differ in hidden")
    assert len(lines) == 3
    assert isinstance(shell.user_ns["history"].model, keras.Model)
    assert int(shell.user_ns["clean"].optimizer.iterations.numpy()) == 5 * 2 + 2


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed",
                            "ignore:Your input ran out of data")
def test_check_says_why_a_model_was_not_checked(shell):
    body = ("model = build('streamed')\n"
            "history = model.fit(((x[i:i + 20], y[i:i + 20]) for i in range(0, 100, 20)),\n"
            "                    verbose=0)")
    result, captured = run(shell, "-n 2 --check --quiet", body)
    assert result.success, captured.stdout
    assert captured.stdout.startswith(
        "Model 'streamed' was not checked: check_fidelity trains two copies on the same "
        "batches, so it reads the data twice")


@pytest.mark.parametrize(("line", "message"), [
    ("-n 1 --check", "--check compares training on one device with training replicated "
                     "over the cell's devices, so it needs at least two. Received: 1 device "
                     "(GPU 0)"),
    ("--check --strategy mirrored", "it does not combine with --strategy mirrored. "
                                    "Received: --check --strategy mirrored"),
    ("--check --sweep 1,2", "it does not combine with --sweep. Received: --check --sweep"),
])
def test_check_refuses_what_it_cannot_compare(shell, line, message):
    with capture_output(), pytest.raises(UsageError, match=re.escape(message)):
        shell.run_cell_magic("replicate", line, "model = build('m')")

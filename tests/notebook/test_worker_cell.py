"""``%%replicate --workers 2``: a self-contained cell trains in two worker processes;
the chief's output shows and its values come back."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

CELL = """
import threading
import keras, numpy as np, nbreplica.cluster
here = nbreplica.cluster.context()
print(f"worker {here.index} of {here.num_workers} says hello")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="tiny")
model.compile(optimizer="sgd", loss="mse")
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
history = model.fit(x, x.sum(axis=1), batch_size=16, epochs=3, verbose=0)
answer = 42
lock = threading.Lock()
"""


@pytest.mark.timeout(300)
def test_a_cell_trains_in_two_workers_and_the_chiefs_values_come_back(shell, spawned):
    shell.reset(new_session=False)
    with capture_output() as captured:
        result = shell.run_cell(f"%%replicate --workers 2\n{CELL}")
    assert result.success, captured.stdout
    assert "worker 0 of 2 says hello" in captured.stdout
    assert "worker 1 of 2" not in captured.stdout  # only the chief's output shows
    namespace = shell.user_ns
    assert isinstance(namespace["model"], keras.Model)
    assert namespace["answer"] == 42 and "lock" not in namespace
    losses = namespace["history"].history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert np.all(np.isfinite(namespace["model"].get_weights()[0]))
    summary = captured.outputs[-1].data["text/plain"]
    assert "%%replicate: 2 workers on one machine (local backend)" in summary
    assert "training 'tiny':" in summary and "samples/s" in summary
    assert "not brought back: lock: a lock cannot be pickled" in summary
    assert len(spawned) == 2  # and both are gone: see the fixture


def test_workers_do_not_combine_with_device_options(shell):
    with pytest.raises(UsageError, match="-n does not combine with --workers.*Received: -n"):
        shell.run_cell_magic("replicate", "--workers 2 -n 2", "pass")

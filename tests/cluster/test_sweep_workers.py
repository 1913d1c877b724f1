"""``strategy="multiworker"`` sweeps, through the command line: 1 and 2 local worker
processes per point, fresh ones each time, stored like every other point."""

from __future__ import annotations

import numpy as np
import pytest

import nbreplica
from nbreplica.cli import main


@pytest.mark.timeout(300)
def test_a_sweep_over_one_and_two_workers(tmp_path, spawned, capsys):
    results = tmp_path / "results.sqlite"
    status = main(["sweep", "--model", "mlp", "--devices", "1,2", "--strategy",
                   "multiworker", "--repeats", "1", "--target-ci", "0", "--steps", "3",
                   "--warmup-steps", "1",
                   "--samples", "256", "--batch-size", "64", "--name", "workers",
                   "--results", str(results), "--out", str(tmp_path / "out")])
    assert status == 0, capsys.readouterr().err
    runs = nbreplica.load_results("workers", results_path=results)
    assert list(zip(runs["strategy"], runs["devices"])) == [
        ("single", 1), ("multiworker", 1), ("multiworker", 2)]
    workers = runs[runs["strategy"] == "multiworker"]
    assert (workers["device_names"].str.count("workers on one machine") == workers["devices"]).all()
    assert not workers["emulated"].any()
    assert (workers["samples_per_s"] > 0).all() and np.isfinite(workers["speedup"]).all()
    assert len(spawned) == 3  # a fresh worker for the 1-worker point, two for the 2-worker one
    assert ("multiworker: devices are worker processes, workers on one machine"
            in capsys.readouterr().out)


def test_multiworker_needs_arrays_it_can_send():
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((8, 2)), np.zeros(8))).batch(4)
    with pytest.raises(ValueError, match=r"need the data as arrays.*Received: x of type "):
        nbreplica.sweep(lambda: None, dataset, devices=(1, 2), strategy="multiworker")

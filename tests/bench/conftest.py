"""Tiny models and one shared real sweep for the sweep tests (8 emulated GPUs)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import nbreplica
from nbreplica.bench.store import RESULTS_ENV_VAR

FEATURES = 8


def tiny_model(name: str = "tiny") -> keras.Model:
    """A compiled two-layer MLP, small enough that a sweep point takes a second."""
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3),
    ], name=name)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def tiny_data(samples: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((samples, FEATURES), dtype=np.float32),
            rng.integers(0, 3, size=samples))


#: Few, short steps: the tests check behaviour and arithmetic, not speed.
QUICK = dict(steps=3, warmup_steps=1, progress=False)


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Every test stores its results in its own file, never in the home directory."""
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv(RESULTS_ENV_VAR, str(path))
    return path


@pytest.fixture(autouse=True)
def restore_selection():
    before = nbreplica.selected_devices()
    yield
    nbreplica.use_devices(before)


@pytest.fixture(scope="session")
def side_by_side(tmp_path_factory) -> nbreplica.SweepResult:
    """A real sweep: split and mirrored, interleaved, on 1, 2 and 4 devices, 3 repeats."""
    x, y = tiny_data()
    return nbreplica.sweep(
        tiny_model, x, y, devices=(1, 2, 4), batch_size=32,
        strategy=("split", "mirrored"), repeats=3, name="side-by-side",
        results_path=tmp_path_factory.mktemp("store") / "results.sqlite", **QUICK,
    )

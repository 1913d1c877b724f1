"""Tiny models and data for the sweep tests (a unique module name: no clash with other
test directories' helpers)."""

from __future__ import annotations

import keras
import numpy as np

from nbreplica.accelerators import Accelerator

FEATURES = 8

#: Stand-in devices for points that are recorded or planned, never run.
GPUS = tuple(Accelerator(i, f"Test GPU {i}", f"/device:GPU:{i}", emulated=False)
             for i in range(4))


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

"""keras.applications models with ``weights=None``, at their smallest input (32x32):

- ``VGG16`` (no BatchNormalization), whole, with its fully connected top;
- ``MobileNet`` (alpha 0.25), with its BatchNormalization layers frozen (a replica
  would normalize with its sub-batch's statistics, a documented difference; frozen, they
  run in inference mode) and its top's Dropout rate set to 0.0 (``dropout=0.0``:
  replicas draw independent masks).

Both are compiled with SGD, sparse categorical cross-entropy and accuracy and trained on
a few random images; VGG16 then predicts (MobileNet's replicated predict function alone
takes longer to trace than the corpus's time allows). Not Adam: with ``weights=None``
and random images most of VGG16's millions of weight gradients are about Adam's epsilon
(1e-7) in size, where Adam's step ``lr * g / (|g| + epsilon)`` turns the float32
rounding of ``g`` (about 1e-10 here: a replicated gradient is a sum over sub-batches,
one device's a sum over the batch) into step differences of about ``lr * 1e-2``, far
above float32 agreement, in any data-parallel run. SGD moves every weight by ``lr * g``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import (
    DEVICES,
    Example,
    assert_trains_like_one_device,
    fit_steps,
    freeze_batch_normalization,
)

INPUT_SHAPE = (32, 32, 3)
CLASSES = 5


def vgg16() -> keras.Model:
    return keras.applications.VGG16(weights=None, input_shape=INPUT_SHAPE, classes=CLASSES)


def mobilenet() -> keras.Model:
    return freeze_batch_normalization(keras.applications.MobileNet(
        weights=None, input_shape=INPUT_SHAPE, alpha=0.25, dropout=0.0, classes=CLASSES))


_rng = np.random.default_rng(0)
IMAGES = _rng.random((10, *INPUT_SHAPE)).astype("float32")
LABELS = _rng.integers(0, CLASSES, size=10)

EXAMPLES = {
    build.__name__: Example(
        build=build,
        compile_args=lambda: {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy",
                              "metrics": ["accuracy"]},
        steps=fit_steps(IMAGES, LABELS, batch_size=5, epochs=1, predict=predict),
    )
    for build, predict in ((vgg16, IMAGES[:8]), (mobilenet, None))
}


@pytest.mark.parametrize("devices", DEVICES)
@pytest.mark.parametrize("application", sorted(EXAMPLES))
def test_trains_like_one_device(application: str, devices: int) -> None:
    assert_trains_like_one_device(EXAMPLES[application], devices)

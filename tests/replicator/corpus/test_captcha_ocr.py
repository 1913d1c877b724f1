"""keras-io examples/vision/captcha_ocr.py

An OCR model (convolutions, bidirectional LSTMs) with a CTC "endpoint layer": the
labels are a second model input, and ``CTCLayer`` adds the per-sample CTC loss, a
``(batch, 1)`` tensor, with ``self.add_loss`` (Keras sums it: the loss of a batch is
the sum over its samples). The model is compiled with an optimizer only and trained
(here without the example's validation data, for time), and its image-to-softmax part
is then used alone for prediction.
Corpus copy: 12x8 random "images" with 3-character random labels, tiny layers, the
Dropout and LSTM dropout rates set to 0.0 (replicas draw independent masks),
``keras.ops.ctc_loss`` in the example's ``ctc_batch_cost`` (same blank: the last
class), and the LSTMs unrolled (``unroll=True``: the same arithmetic over a fixed
sequence length; a replicated ``tf.while_loop`` LSTM takes about ten times as long to
trace as on one device, more than the corpus's time allows).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import DEVICES, Example, Session, assert_trains_like_one_device
from keras import layers, ops

IMG_WIDTH = 12
IMG_HEIGHT = 8
CHARACTERS = ["2", "3", "4", "5", "6"]
MAX_LENGTH = 3
char_to_num = layers.StringLookup(vocabulary=CHARACTERS, mask_token=None)


def ctc_batch_cost(y_true, y_pred, input_length, label_length):
    label_length = ops.cast(ops.squeeze(label_length, axis=-1), dtype="int32")
    input_length = ops.cast(ops.squeeze(input_length, axis=-1), dtype="int32")
    y_pred = ops.log(y_pred + keras.backend.epsilon())
    blank = y_pred.shape[-1] - 1
    return ops.expand_dims(
        ops.ctc_loss(y_true, y_pred, label_length, input_length, mask_index=blank), 1
    )


class CTCLayer(layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = ctc_batch_cost

    def call(self, y_true, y_pred):
        # Compute the training-time loss value and add it
        # to the layer using `self.add_loss()`.
        batch_len = ops.cast(ops.shape(y_true)[0], dtype="int64")
        input_length = ops.cast(ops.shape(y_pred)[1], dtype="int64")
        label_length = ops.cast(ops.shape(y_true)[1], dtype="int64")

        input_length = input_length * ops.ones(shape=(batch_len, 1), dtype="int64")
        label_length = label_length * ops.ones(shape=(batch_len, 1), dtype="int64")

        loss = self.loss_fn(y_true, y_pred, input_length, label_length)
        self.add_loss(loss)

        # At test time, just return the computed predictions
        return y_pred


def build_model() -> keras.Model:
    input_img = layers.Input(shape=(IMG_WIDTH, IMG_HEIGHT, 1), name="image", dtype="float32")
    labels = layers.Input(name="label", shape=(None,), dtype="float32")
    x = layers.Conv2D(4, (3, 3), activation="relu", kernel_initializer="he_normal",
                      padding="same", name="Conv1")(input_img)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = layers.Conv2D(4, (3, 3), activation="relu", kernel_initializer="he_normal",
                      padding="same", name="Conv2")(x)
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    new_shape = ((IMG_WIDTH // 4), (IMG_HEIGHT // 4) * 4)
    x = layers.Reshape(target_shape=new_shape, name="reshape")(x)
    x = layers.Dense(8, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.0)(x)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True, dropout=0.0,
                                                 unroll=True))(x)
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True, dropout=0.0,
                                                 unroll=True))(x)
    x = layers.Dense(len(char_to_num.get_vocabulary()) + 1, activation="softmax",
                     name="dense2")(x)
    output = CTCLayer(name="ctc_loss")(labels, x)
    return keras.models.Model(inputs=[input_img, labels], outputs=output,
                              name="ocr_model_v1")


def _captchas(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Images (width first, as the example transposes them) and character ids."""
    rng = np.random.default_rng(seed)
    images = rng.random((rows, IMG_WIDTH, IMG_HEIGHT, 1)).astype("float32")
    texts = ["".join(rng.choice(CHARACTERS, size=MAX_LENGTH, replace=False))
             for _ in range(rows)]
    labels = np.array([char_to_num(list(text)).numpy() for text in texts], "float32")
    return {"image": images, "label": labels}


TRAIN = _captchas(8, seed=0)
VALIDATION = _captchas(4, seed=1)


def steps(session: Session) -> dict[str, object]:
    history = session.model.fit(TRAIN, batch_size=4, epochs=2, shuffle=False,
                                verbose=0).history
    prediction_model = keras.models.Model(
        session.template.input[0], session.template.get_layer(name="dense2").output)
    predictions = session.wrap(prediction_model).predict(VALIDATION["image"], verbose=0)
    return {"history": history, "predictions": predictions}


EXAMPLE = Example(build=build_model,
                  compile_args=lambda: {"optimizer": keras.optimizers.Adam()},
                  steps=steps)


@pytest.mark.parametrize("devices", DEVICES)
def test_trains_like_one_device(devices: int) -> None:
    assert_trains_like_one_device(EXAMPLE, devices)

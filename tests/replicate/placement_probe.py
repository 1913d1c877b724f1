"""Trains a replicated MLP one step with TensorFlow's placement log on.

Run as a script (the log must be switched on before TensorFlow starts):
``python placement_probe.py DEVICES [stock]``; ``stock`` swaps in Keras's own
``train_step``, whose backward pass is known to collapse onto one device.
"""

import os
import sys

os.environ["NBREPLICA_EMULATE_GPUS"] = sys.argv[1]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"

import tensorflow as tf  # noqa: E402

tf.debugging.set_log_device_placement(True)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbreplica  # noqa: E402

if sys.argv[2:] == ["stock"]:
    nbreplica.ReplicatedModel.train_step = keras.Model.train_step

x_in = keras.Input((16,))
template = keras.Model(x_in, keras.layers.Dense(4)(keras.layers.Dense(32, activation="relu")(x_in)))
parallel = nbreplica.replicate(template, gpus=int(sys.argv[1]))
parallel.compile(optimizer="sgd", loss="mse")
parallel.fit(np.ones((32, 16), "float32"), np.ones((32, 4), "float32"), batch_size=32, verbose=0)

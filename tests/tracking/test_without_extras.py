"""Without MLflow or TensorBoard installed, every name still imports: what logs to MLflow
says what to install, before anything is measured, and event files are still written
(tf.summary needs no tensorboard package)."""

from __future__ import annotations

import os
import subprocess
import sys

from tracking_helpers import scalars

#: Makes ``import mlflow`` and ``import tensorboard`` fail as if neither were installed.
WITHOUT_EXTRAS = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mlflow", "tensorboard"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""

SCRIPT = WITHOUT_EXTRAS + """
import keras, numpy as np, nbreplica
from nbreplica.testing import fake_nvml, plausible_gpus

def refused(call):
    try:
        call()
    except ImportError as error:
        return str(error)
    raise AssertionError("no ImportError")

print(refused(lambda: nbreplica.GpuMonitor(mlflow=True)))
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="m")
model.compile("sgd", "mse")
x = np.zeros((64, 4), np.float32)
print(refused(lambda: nbreplica.sweep(lambda: model, x, x[:, :2], devices=(1, 2),
                                      mlflow=True, progress=False)))
with fake_nvml(*plausible_gpus(2)):
    parallel = nbreplica.replicate(model, gpus=2)
    parallel.compile("sgd", "mse")
    parallel.fit(x, x[:, :2], batch_size=8, epochs=2, verbose=0,
                 callbacks=[nbreplica.GpuMonitor(sys.argv[1], interval=0.02)])
print("mlflow" in sys.modules, "tensorboard" in sys.modules, nbreplica.compare.__name__)
"""


def test_without_mlflow_and_tensorboard_names_import_and_say_what_to_install(
        tmp_path, private_results):
    environment = {**os.environ, "NBREPLICA_EMULATE_GPUS": "2"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "logs")],
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    monitor, sweep, imported = done.stdout.splitlines()
    assert monitor.startswith("GpuMonitor(mlflow=True) logs to MLflow, which is not installed")
    assert monitor.endswith("Install it with: python3 -m pip install 'nbreplica[mlflow]'. "
                            "Received: GpuMonitor(mlflow=True)")
    assert sweep.startswith("nbreplica.sweep(..., mlflow=True) logs to MLflow, which is not "
                            "installed")
    assert not private_results.exists()  # refused before anything was measured
    assert imported == "False False compare"
    logged = scalars(tmp_path / "logs" / "gpus")  # read here, where TensorBoard is installed
    assert "system/gpu_1_utilization_percentage" in logged
    assert [step for step, _ in logged["system/epoch_gpu_0_memory_usage_megabytes"]] == [0, 1]

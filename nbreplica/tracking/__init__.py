"""GPU history where people already look for their runs: TensorBoard and MLflow.

    GpuMonitor            Keras callback: the model's GPUs per step and epoch, into
                          TensorBoard event files and/or the active MLflow run

Sweeps go to MLflow with ``nbreplica.sweep(..., mlflow=True)``
(:mod:`nbreplica.bench.to_mlflow`). MLflow is the optional extra ``nbreplica[mlflow]``;
TensorBoard, to view event files, ``nbreplica[tensorboard]``.
"""

from nbreplica.tracking.gpu_monitor import GpuMonitor

__all__ = ["GpuMonitor"]

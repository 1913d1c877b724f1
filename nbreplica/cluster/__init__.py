"""Training across worker processes and machines on TensorFlow's
``MultiWorkerMirroredStrategy``.

    launch(fn, *args, workers=2)   run fn in fresh worker processes that train as one
    context()                      inside a worker: its index, the worker count, the
                                   chief, the strategy
    write_job(path, fn, *args)     a job file for ``nbreplica worker PATH``, which a
                                   cluster manager runs with TF_CONFIG set
    RayBackend(...)                resources and placement of workers on Ray

Importing this module loads neither TensorFlow nor Ray: the launcher only starts
workers, and TensorFlow starts in them.
"""

from nbreplica._errors import LaunchTimeout, WorkerError
from nbreplica.cluster.current import WorkerContext, context
from nbreplica.cluster.job import write_job
from nbreplica.cluster.launcher import launch
from nbreplica.cluster.ray_launcher import RayBackend

__all__ = ["LaunchTimeout", "RayBackend", "WorkerContext", "WorkerError", "context", "launch",
           "write_job"]

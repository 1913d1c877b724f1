"""The names of a sweep's strategies, in a module light enough for every layer.

Loading, summarizing and plotting stored results needs these names but not
TensorFlow, so they live here rather than beside the code that trains.
"""

from __future__ import annotations

#: The plain model on one device: the baseline every strategy's speedup is measured
#: against.
BASELINE = "single"
#: The data-parallel strategies that train in the calling process.
IN_PROCESS = ("split", "mirrored")
#: Points of this strategy train in fresh worker processes, one replica each
#: (``nbreplica.cluster``), on this machine.
MULTIWORKER = "multiworker"
#: What a multi-worker point's "devices" are: worker processes sharing this machine.
WORKERS_LABEL = "workers on one machine"
#: The data-parallel strategies a sweep can measure.
STRATEGIES = (*IN_PROCESS, MULTIWORKER)

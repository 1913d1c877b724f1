"""The names of a sweep's strategies, in a module light enough for every layer.

Loading, summarizing and plotting stored results needs these names but not
TensorFlow, so they live here rather than beside the code that trains.
"""

from __future__ import annotations

#: The plain model on one device: the baseline every strategy's speedup is measured
#: against.
BASELINE = "single"
#: The data-parallel strategies a sweep can measure.
STRATEGIES = ("split", "mirrored")

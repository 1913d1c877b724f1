"""The defaults of every sweep, whichever front end starts it (:func:`nbreplica.sweep`,
``%%replicate --sweep``, ``nbreplica sweep``), and of the statistics over its runs."""

from __future__ import annotations

#: The widest speedup interval an adaptive sweep accepts, relative to the median
#: (0.10: ±5%).
TARGET_CI = 0.10
#: The seconds an adaptive sweep may take.
BUDGET_S = 180.0
#: How many times every point is measured before the sweep adapts.
REPEATS = 3
#: Untimed steps before a point's timed ones (the first traces the model).
WARMUP_STEPS = 3
#: The recommended device count is the largest whose median efficiency reaches this.
EFFICIENCY_THRESHOLD = 0.7
#: The coverage the intervals aim at.
CONFIDENCE = 0.95

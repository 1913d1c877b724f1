"""The defaults of every sweep, whichever front end starts it (:func:`nbreplica.sweep`,
``%%replicate --sweep``, ``nbreplica sweep``), and of the statistics over its runs."""

from __future__ import annotations

#: The widest speedup interval an adaptive sweep accepts, relative to the median
#: (0.10: ±5%).
TARGET_CI = 0.10
#: The seconds an adaptive sweep may take; it stops sooner, once every speedup is
#: within its target. The 1-2-4-8 MLP sweep on a quiet 2-core machine needs about 16
#: to 22 rounds of 8 s for that, which 3 minutes would cut short about once in five.
BUDGET_S = 240.0
#: How many times every point is measured before the sweep adapts.
REPEATS = 3
#: Untimed steps before a point's timed ones (the first traces the model).
WARMUP_STEPS = 3
#: The recommended device count is the largest whose median efficiency reaches this.
EFFICIENCY_THRESHOLD = 0.7
#: The coverage the intervals aim at.
CONFIDENCE = 0.95

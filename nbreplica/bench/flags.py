"""Parsers of the flags that ``nbreplica sweep`` and ``%%replicate --sweep`` share
(both read their arguments with ``argparse``)."""

from __future__ import annotations

import argparse
import math

#: An adaptive sweep's defaults: the widest speedup interval accepted (relative to
#: the median) and the seconds it may take.
DEFAULT_TARGET_CI = 0.10
DEFAULT_BUDGET_S = 180.0


def target_ci(text: str) -> float:
    """``--target-ci WIDTH``: a relative interval width, or 0 for a sweep of a fixed
    number of repeats."""
    try:
        width = float(text)
    except ValueError:
        width = math.nan
    if not 0 <= width < math.inf:
        raise argparse.ArgumentTypeError(
            "expected a relative interval width such as 0.10, or 0 for a fixed number "
            f"of repeats. Received: --target-ci {text}")
    return width


def budget(text: str) -> float:
    """``--budget SECONDS``: a number of seconds > 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds > 0. Received: --budget {text}")
    return seconds

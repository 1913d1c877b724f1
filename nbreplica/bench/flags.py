"""Parsers of the flags that the ``nbreplica`` command and the ``%%replicate`` magic
share (both read their arguments with ``argparse``). Each error names the flag and
what it received. ``seconds`` is :func:`nbreplica._flags.seconds`, which the worker
command uses too."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from nbreplica._flags import real, seconds

__all__ = ["DEFAULT_BUDGET_S", "DEFAULT_TARGET_CI", "amount", "positive", "seconds",
           "target_ci"]

#: An adaptive sweep's defaults: the widest speedup interval accepted (relative to
#: the median) and the seconds it may take.
DEFAULT_TARGET_CI = 0.10
DEFAULT_BUDGET_S = 180.0


def target_ci(text: str) -> float:
    """``--target-ci WIDTH``: a relative interval width, or 0 for a sweep of a fixed
    number of repeats."""
    return real("--target-ci", "a relative interval width such as 0.10, or 0 for a "
                "fixed number of repeats", lambda width: width >= 0)(text)


def amount(flag: str) -> Callable[[str], float]:
    """The parser of ``flag N``: a number >= 0, e.g. of CPUs or GPUs (Ray takes
    fractions)."""
    return real(flag, "a number >= 0", lambda value: value >= 0)


def positive(flag: str) -> Callable[[str], int]:
    """The parser of ``flag N``: a whole number >= 1."""
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= 1. Received: {flag} {text}")
        return int(text)
    return parse

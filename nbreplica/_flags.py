"""Parsers of number flags (``argparse`` types) for every command line and magic of
nbreplica: each error names the flag and what it received."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def seconds(flag: str) -> Callable[[str], float]:
    """The parser of ``flag SECONDS``: a number of seconds > 0."""
    return real(flag, "a number of seconds > 0", lambda value: value > 0)


def real(flag: str, expected: str, accepts: Callable[[float], bool]) -> Callable[[str], float]:
    """The parser of ``flag X``: a finite number that ``accepts``; the error says it
    expected ``expected``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accepts(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}. Received: {flag} {text}")
        return value
    return parse

"""Parsers of flags (``argparse`` types) for the front ends: the ``nbreplica``
command, its ``worker`` command and the ``%%replicate`` magic. Each error names the flag
and what it received. The defaults the flags show are the library's
(:mod:`nbreplica.bench.defaults`)."""

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


def whole_numbers(flag: str, minimum: int) -> Callable[[str], list[int]]:
    """The parser of ``flag A,B,C``: distinct whole numbers >= ``minimum``."""
    def parse(text: str) -> list[int]:
        try:
            numbers = [int(part) for part in comma_list(text)]
        except ValueError:
            numbers = []
        if not numbers or any(n < minimum for n in numbers):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated whole numbers >= {minimum}. "
                f"Received: {flag} {text}"
            )
        if len(set(numbers)) != len(numbers):
            raise argparse.ArgumentTypeError(
                f"numbers must not repeat. Received: {flag} {text}")
        return numbers
    return parse


def comma_list(text: str) -> tuple[str, ...]:
    """The items of ``A, B,C``, stripped of surrounding spaces."""
    return tuple(part.strip() for part in text.split(","))


#: What ``--shares`` takes besides comma-separated numbers (the names of
#: ``replicate(model, shares=...)``).
SHARE_NAMES = ("even", "auto", "memory")


def shares(text: str) -> str | list[float]:
    """``--shares auto|memory|even|0.5,0.25,0.25``: a way to split each batch, or
    positive proportions, one per device (checked against the device count later)."""
    if text.strip() in SHARE_NAMES:
        return text.strip()
    try:
        values = [float(part) for part in comma_list(text)]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected {', '.join(SHARE_NAMES)} or comma-separated numbers > 0, one per "
            f"device. Received: --shares {text}")
    return values

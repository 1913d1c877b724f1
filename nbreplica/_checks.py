"""Type checks for numeric arguments. ``bool`` is refused by both: Python counts
``True`` and ``False`` as the integers 1 and 0, which is never what a caller means by a
count, a duration or a size."""

from __future__ import annotations

import numbers


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_whole(value: object) -> bool:
    """Whether ``value`` is an integer (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)

"""How far apart two results of the same computation are, and what rounding allows.

The difference of two tensors is the largest element-wise difference divided by the
largest magnitude in either (at least :data:`FLOOR`): relative to the tensor's scale,
so that an element that sums to nearly zero does not turn rounding into a large
relative error, and an all-zero gradient divides by :data:`FLOOR`, not by zero.
Elements equal in both (infinities and NaNs included) differ by zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The smallest magnitude a difference is measured against.
FLOOR = 1e-6

#: What rounding may reach, by compute dtype: float32 (and float64) results summed in
#: another order differ by a few units of float32's precision (1.2e-7); a float16 or
#: bfloat16 compute dtype rounds each replica's part to its precision (9.8e-4, 7.8e-3)
#: before the parts are summed. bfloat16's is a guide: with an adaptive optimizer (Adam)
#: its rounding can flip the sign of a gradient element near zero, and so of a step.
THRESHOLDS = {"float16": 5e-3, "bfloat16": 4e-2}
DEFAULT_THRESHOLD = 1e-5


def threshold_for(compute_dtype: str) -> float:
    """The largest difference that rounding explains for ``compute_dtype``."""
    return THRESHOLDS.get(compute_dtype, DEFAULT_THRESHOLD)


def relative_difference(a: Any, b: Any) -> float:
    """The difference of ``a`` and ``b`` (arrays of one shape, or numbers) relative to
    their scale; ``inf`` where their shapes differ."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, counted as inf below
        gap = np.where(same, 0.0, np.abs(a - b))
    finite = np.abs(np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]))
    scale = max(float(finite.max()) if finite.size else 0.0, FLOOR)
    return float(np.where(np.isnan(gap), np.inf, gap).max() / scale)

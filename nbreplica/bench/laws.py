"""Scaling laws fitted to a sweep's measured speedups, and which of them the points
support.

Laws, for ``n`` devices:

- Amdahl (strong scaling): ``S(n) = 1 / (f + (1 - f) / n)``, serial fraction
  ``f`` in [0, 1]; the speedup only rises, towards ``1 / f``.
- Gustafson (weak scaling): ``S(n) = n - f (n - 1)``, ``f`` in [0, 1].
- Gunther's Universal Scalability Law (USL): ``S(n) = n / (1 + α(n - 1) + β n(n - 1))``,
  contention ``α >= 0`` and coherency ``β >= 0`` (a cost paid for every pair of devices,
  such as keeping copies in step). With ``β = 0`` it is Amdahl's law with ``f = α``;
  with ``β > 0`` the speedup peaks at ``n* = sqrt((1 - α) / β)`` devices and falls beyond
  (from the first device on when ``α >= 1``), so it fits sweeps that slow down.

Fitting. Each law is fitted by bounded least squares (``scipy.optimize.least_squares``)
to the log speedups, timing noise being relative. Each point is weighed by its
*allowed deviation*: the half-width of its speedup interval on the log scale, and at
least ``log(1 + FIT_TOLERANCE)`` (±5%), so that a very narrow interval does not turn a
small, systematic misfit into a rejection. Points on one device (speedup 1 by
definition) carry no information.

A law *fits* when it passes within the allowed deviation of every point and there are
more points (beyond one device) than the law has parameters: a curve through as many
points as it has parameters always passes, and so tests nothing.

Choosing. The one-parameter law of the scaling (Amdahl for strong, Gustafson for weak)
is chosen unless the USL fits clearly better: it fits, and its sum of squared
deviations, in units of the allowed deviations, is lower by more than
:data:`CLEARLY_BETTER`. Reading an allowed deviation as 1.96 standard errors, that is
the likelihood-ratio test of the USL's second parameter at 95% (the chi-square(1)
quantile, 3.84, is 1.96²). An information criterion such as AICc is undefined for a
two-parameter law on 3 points (1, 2, 4, 8 devices), so it cannot serve the usual sweep.
When the one-parameter law does not fit, the USL is chosen if it fits; when no law fits,
none is chosen, and nothing is extrapolated from one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

#: The one-parameter law of each scaling: strong scaling (fixed global batch) follows
#: Amdahl, weak scaling (fixed per-device batch) Gustafson.
SIMPLE_LAWS = {"strong": "amdahl", "weak": "gustafson"}
USL = "usl"
#: The smallest deviation from a point a fitting law is allowed, relative to it.
FIT_TOLERANCE = 0.05
#: How much lower the USL's sum of squared deviations (in allowed deviations) must be
#: for it to be chosen over the one-parameter law (see the module docstring).
CLEARLY_BETTER = 1.0

_BOUNDS = {"amdahl": ([0.0], [1.0]), "gustafson": ([0.0], [1.0]),
           USL: ([0.0, 0.0], [np.inf, np.inf])}
# Least squares on log speedups is not convex in the USL's (α, β): several starts,
# the best kept.
_STARTS = {"amdahl": ([0.1], [0.9]), "gustafson": ([0.1], [0.9]),
           USL: ([0.05, 0.001], [0.5, 0.05], [1.0, 0.3])}


def law_for(scaling: str) -> str:
    """The one-parameter law of ``scaling`` (``"strong"``: Amdahl, ``"weak"``:
    Gustafson)."""
    try:
        return SIMPLE_LAWS[scaling]
    except KeyError:
        raise ValueError(
            f"scaling must be one of {sorted(SIMPLE_LAWS)}. Received: scaling={scaling!r}"
        ) from None


def law_speedup(law: str, params: Sequence[float], devices: ArrayLike) -> np.ndarray:
    """The speedup that ``law`` with ``params`` (``(f,)``, or ``(α, β)`` for the USL)
    gives on ``devices`` devices."""
    n = np.asarray(devices, dtype=float)
    if law == "amdahl":
        (f,) = params
        return 1.0 / (f + (1.0 - f) / n)
    if law == "gustafson":
        (f,) = params
        return n - f * (n - 1.0)
    if law == USL:
        alpha, beta = params
        return n / (1.0 + alpha * (n - 1.0) + beta * n * (n - 1.0))
    raise ValueError(f"law must be one of {[*_BOUNDS]}. Received: law={law!r}")


def peak_devices(law: str, params: Sequence[float]) -> float:
    """The device count at which ``law`` with ``params`` gives its highest speedup:
    the better of the whole counts around the USL's ``n* = sqrt((1 - α) / β)``, 1 when
    the speedup never rises, ``inf`` when it rises without end."""
    if law != USL:
        return 1.0 if params[0] >= 1.0 - 1e-9 else math.inf
    alpha, beta = params
    if alpha >= 1.0:
        return 1.0
    if beta <= 0.0:
        return math.inf
    peak = math.sqrt((1.0 - alpha) / beta)
    around = np.array([max(1.0, math.floor(peak)), max(1.0, math.ceil(peak))])
    return float(around[np.argmax(law_speedup(law, params, around))])


@dataclass(frozen=True)
class LawFit:
    """One law fitted to a curve's points.

    Attributes:
        law: ``"amdahl"``, ``"gustafson"`` or ``"usl"``.
        params: ``(f,)``, or ``(α, β)`` for the USL.
        error: the largest deviation of the law from a measured speedup, relative to
            it (0.03: 3%).
        error_devices: the device count of that point.
        score: the sum of squared deviations on the log scale, each in units of its
            point's allowed deviation.
        points: how many points (beyond one device) it was fitted to.
        fits: whether the law passes within every point's allowed deviation, with
            more points than parameters (module docstring).
    """

    law: str
    params: tuple[float, ...]
    error: float
    error_devices: int
    score: float
    points: int
    fits: bool

    def speedup(self, devices: ArrayLike) -> np.ndarray:
        """The speedup the fitted law gives on ``devices`` devices."""
        return law_speedup(self.law, self.params, devices)

    @property
    def peak_devices(self) -> float:
        """See :func:`peak_devices`."""
        return peak_devices(self.law, self.params)

    def describe_error(self) -> str:
        """e.g. ``"usl 12% off at 8 devices"``, or ``"usl untested: 2 device counts
        beyond one, 3 needed"``."""
        if self.points <= len(self.params):
            return (f"{self.law} untested: {self.points} device count"
                    f"{'' if self.points == 1 else 's'} beyond one, "
                    f"{len(self.params) + 1} needed")
        return f"{self.law} {self.error:.0%} off at {self.error_devices} devices"


def fit_law(law: str, devices: ArrayLike, speedups: ArrayLike,
            allowed: ArrayLike | None = None) -> LawFit | None:
    """``law`` fitted to the measured ``speedups`` on ``devices`` devices (module
    docstring); ``allowed`` is each point's allowed deviation on the log scale (by
    default ``log(1 + FIT_TOLERANCE)`` for every point). Points on one device and
    speedups that are not finite and positive are left out; ``None`` when no point is
    left."""
    n, s, tolerance = _informative(devices, speedups, allowed)
    if n.size == 0:
        return None
    target = np.log(s)

    def deviations(params: np.ndarray) -> np.ndarray:
        return (np.log(law_speedup(law, params, n)) - target) / tolerance

    best = min((least_squares(deviations, start, bounds=_BOUNDS[law])
                for start in _STARTS[law]), key=lambda solution: solution.cost)
    params = tuple(float(value) for value in best.x)
    relative = np.abs(law_speedup(law, params, n) / s - 1.0)
    scaled = deviations(best.x)
    worst = int(np.argmax(relative))
    return LawFit(
        law=law, params=params, error=float(relative[worst]),
        error_devices=int(n[worst]), score=float(np.sum(scaled**2)), points=int(n.size),
        fits=bool(n.size > len(params) and np.all(np.abs(scaled) <= 1.0 + 1e-9)),
    )


@dataclass(frozen=True)
class LawChoice:
    """The laws fitted to one curve and the one chosen (module docstring)."""

    simple: LawFit | None
    usl: LawFit | None

    @property
    def chosen(self) -> LawFit | None:
        """The law the points support, ``None`` when none fits."""
        simple, usl = self.simple, self.usl
        if usl is not None and usl.fits and (
            simple is None or not simple.fits or simple.score - usl.score > CLEARLY_BETTER
        ):
            return usl
        return simple if simple is not None and simple.fits else None

    def misfit(self) -> str:
        """Why no law was chosen, e.g. ``"no scaling law fits the measured speedups
        within their intervals (±5% at least): amdahl 45% off at 8 devices, usl 9% off
        at 4 devices"``; empty when one was."""
        if self.chosen is not None:
            return ""
        fitted = [fit for fit in (self.simple, self.usl) if fit is not None]
        if not fitted:
            return "no point beyond one device to fit a scaling law to"
        if all(fit.points <= len(fit.params) for fit in fitted):
            needs = ", ".join(f"{fit.law} {len(fit.params) + 1}" for fit in fitted)
            return (f"too few device counts to test a scaling law: {fitted[0].points} "
                    f"beyond one device (needed: {needs})")
        return ("no scaling law fits the measured speedups within their intervals "
                f"(±{FIT_TOLERANCE:.0%} at least): "
                + ", ".join(fit.describe_error() for fit in fitted))


def choose_law(scaling: str, devices: ArrayLike, speedups: ArrayLike,
               allowed: ArrayLike | None = None) -> LawChoice:
    """The one-parameter law of ``scaling`` and the USL, fitted to the points (see
    :func:`fit_law`), and the one they support (:attr:`LawChoice.chosen`)."""
    simple = fit_law(law_for(scaling), devices, speedups, allowed)
    return LawChoice(simple, fit_law(USL, devices, speedups, allowed))


def _informative(devices: ArrayLike, speedups: ArrayLike,
                 allowed: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points beyond one device with a finite, positive speedup, and their allowed
    deviations (at least the tolerance's)."""
    n = np.asarray(devices, dtype=float)
    s = np.asarray(speedups, dtype=float)
    floor = math.log1p(FIT_TOLERANCE)
    tolerance = (np.full(n.shape, floor) if allowed is None
                 else np.fmax(np.asarray(allowed, dtype=float), floor))
    keep = (n > 1) & np.isfinite(s) & (s > 0)
    return n[keep], s[keep], tolerance[keep]

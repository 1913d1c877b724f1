"""Scaling laws: each fitted to speedups it generated, the choice between them, and
what a sweep that slows down reports."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nbreplica.bench.laws import (
    FIT_TOLERANCE,
    choose_law,
    fit_law,
    law_for,
    law_speedup,
    peak_devices,
)
from nbreplica.bench.result import SweepResult
from nbreplica.bench.stats import scaling_curve, scaling_table, summarize
from nbreplica.bench.tables import recommendations

from sweep_helpers import stored_runs

DEVICES = np.array([1, 2, 4, 8, 16])


@pytest.mark.parametrize(("law", "params"), [("amdahl", (0.1,)), ("gustafson", (0.25,)),
                                             ("usl", (0.05, 0.02))])
def test_each_law_recovers_its_parameters(law, params):
    fit = fit_law(law, DEVICES, law_speedup(law, params, DEVICES))
    assert fit.params == pytest.approx(params, abs=1e-6)
    assert fit.fits and fit.error < 1e-6 and fit.points == 4
    assert law_speedup(law, params, 1) == pytest.approx(1.0)


@pytest.mark.parametrize(("alpha", "beta", "peak", "shape"), [
    (0.02, 0.002, 22, "rises"),      # peak beyond 16 devices: still rising
    (0.05, 0.02, 7, "plateaus"),     # n* = sqrt(0.95 / 0.02) = 6.9
    (0.3, 0.1, 3, "falls"),          # n* = 2.6 (S(2) 1.33 < S(3) 1.36), then 0.82 at 8
])
def test_usl_is_chosen_for_speedups_that_rise_plateau_and_fall(alpha, beta, peak, shape):
    speedups = law_speedup("usl", (alpha, beta), DEVICES)
    choice = choose_law("strong", DEVICES, speedups)
    assert choice.chosen is choice.usl
    assert choice.usl.params == pytest.approx((alpha, beta), rel=1e-4, abs=1e-7)
    assert choice.usl.peak_devices == peak
    assert not choice.simple.fits  # Amdahl's speedup never falls or bends that way
    assert choice.misfit() == ""


def test_the_peak_is_the_better_whole_count_around_n_star():
    # n* = sqrt(0.9 / 0.04) = 4.74: S(4) = 2.35 < S(5) = 2.38.
    assert peak_devices("usl", (0.1, 0.04)) == 5
    assert peak_devices("usl", (1.2, 0.05)) == 1  # falls from the first device on
    assert peak_devices("usl", (0.1, 0.0)) == math.inf  # Amdahl: rises without end
    assert peak_devices("amdahl", (0.1,)) == math.inf
    assert peak_devices("amdahl", (1.0,)) == 1


def test_a_law_that_fits_within_the_noise_is_kept_over_the_usl():
    # Amdahl with f = 0.1, each point off by up to 2%: the USL's second parameter
    # buys too little to be chosen.
    noise = np.array([1.0, 1.02, 0.985, 1.015, 0.99])
    speedups = law_speedup("amdahl", (0.1,), DEVICES) * noise
    choice = choose_law("strong", DEVICES, speedups)
    assert choice.simple.fits and choice.usl.fits
    assert choice.chosen is choice.simple
    assert choice.chosen.error < FIT_TOLERANCE


def test_no_law_is_chosen_where_none_fits_and_too_few_points_test_nothing():
    zigzag = choose_law("strong", [1, 2, 4, 8, 16], [1.0, 1.9, 1.1, 3.5, 1.2])
    assert zigzag.chosen is None
    assert zigzag.misfit().startswith(
        "no scaling law fits the measured speedups within their intervals (±5% at least): "
        "amdahl ")
    assert "usl " in zigzag.misfit()
    # Two points beyond one device: the USL passes through both, which tests nothing.
    two = choose_law("strong", [1, 2, 4], [1.0, 0.8, 0.6])
    assert two.chosen is None
    assert two.misfit().endswith(
        "amdahl 67% off at 4 devices, usl untested: 2 device counts beyond one, 3 needed")
    one = choose_law("weak", [1, 2], [1.0, 1.9])
    assert one.chosen is None and one.misfit() == (
        "too few device counts to test a scaling law: 1 beyond one device (needed: "
        "gustafson 2, usl 3)")
    with pytest.raises(ValueError, match="Received: scaling='linear'"):
        law_for("linear")


def test_a_point_with_a_wide_interval_allows_a_wider_miss():
    speedups = [1.0, 1.8, 3.0, 3.6]  # Amdahl, f = 0.1, gives 4.7 at 8 devices
    tight = choose_law("strong", [1, 2, 4, 8], speedups)
    loose = choose_law("strong", [1, 2, 4, 8], speedups, allowed=[0, 0, 0, math.log(1.4)])
    assert not tight.simple.fits and loose.simple.fits


#: A sweep whose speedup falls below 1: 0.95× at 2 devices, 0.55× at 8.
SLOWING = {("single", 1): [1000.0, 1010.0, 990.0], ("split", 2): [950.0, 960.0, 940.0],
           ("split", 4): [780.0, 790.0, 770.0], ("split", 8): [550.0, 555.0, 545.0]}


def slowing_result(tmp_path, throughputs=SLOWING) -> SweepResult:
    return SweepResult(stored_runs(throughputs, steps=50, step_cv=0.05), pd.DataFrame(
        columns=["time", "device", "metric", "value"]), name="slowing", sweep_id="s1",
        results_path=tmp_path / "r.sqlite", planned_points=12)


def test_a_slowdown_is_fitted_by_the_usl_and_peaks_at_one_device(tmp_path):
    result = slowing_result(tmp_path)
    fit = result.scaling.iloc[0]
    assert fit["law"] == "usl" and fit["reliable"]
    assert fit["alpha"] > 0 and fit["beta"] > 0
    assert fit["peak_devices"] == 1 and fit["peak_within_measured"]
    assert fit["serial_fraction"] == pytest.approx(1.0)  # Amdahl's best is flat
    # The forecast follows the fall instead of a flat 1.00×.
    assert fit["predicted_speedup_16"] < 0.55 and fit["predicted_speedup_32"] < 0.55
    line = recommendations(result.scaling)[0]
    assert line.startswith("split: usl α ")
    assert "peaks at 1 device (within the measured counts)" in line
    assert "1.00×" not in line and "recommended devices 1" in line
    speedup_axes = result.plot().axes[0]
    drawn = [line for line in speedup_axes.get_lines()
             if line.get_label().startswith("split: usl fit")]
    assert len(drawn) == 1 and max(drawn[0].get_ydata()) < 1.01


def test_a_slowdown_no_law_fits_is_not_extrapolated(tmp_path):
    jumpy = {**SLOWING, ("split", 4): [1300.0, 1310.0, 1290.0]}  # 0.95, 1.3, 0.55
    result = slowing_result(tmp_path, jumpy)
    fit = result.scaling.iloc[0]
    assert pd.isna(fit["law"]) and not fit["reliable"]
    assert math.isnan(fit["predicted_speedup_16"]) and math.isnan(fit["peak_devices"])
    assert fit["unreliable_reason"].startswith("no scaling law fits the measured speedups")
    assert fit["recommended_devices"] == 1  # the measured efficiencies still say so
    line = recommendations(result.scaling)[0]
    assert line.startswith("split: no scaling law fits") and "nothing predicted" in line
    figure = result.plot()
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert not any("fit" in label for label in labels)
    assert any(text.get_text().startswith("No scaling law drawn for split: no scaling law "
                                          "fits") for text in figure.texts)
    with pytest.raises(ValueError, match="has no law"):
        scaling_curve(fit, [16])


def test_runs_stored_before_the_usl_load_with_its_columns(tmp_path):
    steady = summarize(stored_runs({("single", 1): [1000.0, 1000.0, 1000.0],
                                    ("split", 2): [1900.0, 1910.0, 1890.0],
                                    ("split", 4): [3400.0, 3420.0, 3380.0]},
                                   steps=50, step_cv=0.05))
    table = scaling_table(steady)
    assert list(table.columns[:10]) == [
        "sweep_id", "sweep_name", "strategy", "law", "serial_fraction", "alpha", "beta",
        "fit_error", "peak_devices", "peak_within_measured"]
    assert table["law"].tolist() == ["amdahl"]
    assert scaling_curve(table.iloc[0], [1])[0] == pytest.approx(1.0)

"""Sweep reports with a forecast beside the measurements: ``nbreplica.sweep(...,
forecast=HARDWARE)``, ``nbreplica sweep --forecast`` and ``%%replicate --sweep ...
--forecast`` (8 emulated GPUs: see tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

import nbreplica
from forecast_models import mlp
from nbreplica.bench.result import SweepResult
from nbreplica.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from sweep_helpers import STEADY, stored_runs  # noqa: E402

LAW_NOTE = ("The points were measured on emulated devices sharing one CPU: the fitted law "
            "and its predicted speedups at more devices extrapolate that sharing")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 8), dtype=np.float32)
    y = rng.standard_normal((128, 4), dtype=np.float32)
    result = nbreplica.sweep(mlp, x, y, devices=(1, 2), batch_size=16, repeats=2, steps=2,
                             target_ci=None, results_path=folder / "results.sqlite",
                             progress=False, forecast="dgx1-v100")
    return result, folder


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_sweeps_forecast_is_its_model_at_its_batch_and_device_counts(swept):
    result, _ = swept
    assert result.forecast.label == "forecast on dgx1-v100"
    assert result.forecast.model_name == "mlp" and result.forecast.scaling == "strong"
    assert list(result.forecast.frame["devices"]) == [1, 2]
    assert list(result.forecast.frame["global_batch"]) == [16, 16]


@pytest.fixture(scope="module")
def emulated_steady(swept, tmp_path_factory):
    """A steady sweep of emulated devices, whose law is fitted, with the forecast."""
    runs = stored_runs(STEADY, steps=50, step_cv=0.05).assign(emulated=True)
    result = SweepResult(runs, pd.DataFrame(columns=["time", "device", "metric", "value"]),
                         name="steady", sweep_id="s1",
                         results_path=tmp_path_factory.mktemp("steady") / "r.sqlite",
                         planned_points=9)
    result.forecast = swept[0].forecast
    return result


def test_the_table_shows_the_forecast_beside_the_measurements(swept):
    result, _ = swept
    lines = result.table().splitlines()
    start = lines.index("Forecast on dgx1-v100 (split, strong scaling; a forecast for real "
                        "GPUs, not a measurement):")
    assert lines[start + 1].split()[:3] == ["devices", "speedup", "(forecast)"]
    assert [line.split()[0] for line in lines[start + 2:]] == ["1", "2"]
    assert max(len(line) for line in lines) <= 100


def test_a_law_fitted_to_emulated_points_is_qualified_in_table_plot_and_page(
        emulated_steady, tmp_path):
    assert emulated_steady.scaling["law"].notna().all()
    table = emulated_steady.table()
    qualified = (f"{LAW_NOTE}, not what GPUs would gain; the forecast on dgx1-v100 speaks "
                 "for them.")
    assert flat(table).endswith(qualified)
    assert max(len(line) for line in table.splitlines()) <= 100
    assert any(flat(text.get_text()) == qualified for text in emulated_steady.plot().texts)
    page = emulated_steady.save(tmp_path)["report"].read_text()
    assert qualified in flat(page)
    forecast, emulated_steady.forecast = emulated_steady.forecast, None
    try:
        assert "nbreplica sweep --forecast HARDWARE) speaks for them" in flat(
            emulated_steady.table())
    finally:
        emulated_steady.forecast = forecast


def test_the_plot_draws_the_forecast_dashed_beside_the_measured_curve(swept):
    result, _ = swept
    speedup = result.plot().axes[0]
    lines = {line.get_label(): line for line in speedup.get_lines()}
    assert lines["forecast on dgx1-v100"].get_linestyle() == "--"
    assert "split" in lines


def test_the_saved_report_has_the_forecast_and_a_loaded_sweep_has_it_again(swept, tmp_path):
    result, folder = swept
    paths = result.save(tmp_path / "report")
    page = paths["report"].read_text()
    assert "<h2>Forecast on dgx1-v100</h2>" in page and "bound by (forecast)" in page
    assert "Forecast: mlp on dgx1-v100" in page
    assert paths["forecast"].read_text().startswith("devices,")
    loaded = SweepResult.load(result.sweep_id, results_path=folder / "results.sqlite")
    assert loaded.forecast.label == "forecast on dgx1-v100"
    assert loaded.forecast.hardware == result.forecast.hardware
    pd.testing.assert_frame_equal(loaded.forecast.frame, result.forecast.frame)
    pd.testing.assert_frame_equal(loaded.forecast.links, result.forecast.links)
    assert loaded.forecast.explain() == result.forecast.explain()
    assert "Forecast on dgx1-v100 (split, strong scaling" in loaded.table()
    again = loaded.save(tmp_path / "loaded")
    assert "<h2>Forecast on dgx1-v100</h2>" in again["report"].read_text()
    assert again["forecast"].read_text() == paths["forecast"].read_text()


def test_an_unknown_machine_fails_before_anything_is_measured(tmp_path):
    x = np.zeros((32, 8), np.float32)
    with pytest.raises(ValueError, match=r"catalogue: 8xK80-pcie3, .*Received: hardware='tpu'"):
        nbreplica.sweep(mlp, x, np.zeros((32, 4), np.float32), devices=(1, 2), batch_size=8,
                        results_path=tmp_path / "r.sqlite", progress=False, forecast="tpu")
    assert not (tmp_path / "r.sqlite").exists()


def test_the_sweep_command_prints_the_forecast_under_its_table(tmp_path, capsys):
    assert main(["sweep", "--model", "mlp", "--devices", "1,2", "--emulate", "8",
                 "--samples", "128", "--batch-size", "16", "--repeats", "2", "--steps", "2",
                 "--target-ci", "0", "--forecast", "8xL4-pcie4", "--out", str(tmp_path / "out"),
                 "--results", str(tmp_path / "results.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "Forecast on 8xL4-pcie4 (split, strong scaling; a forecast for real GPUs" in out
    assert (tmp_path / "out" / "forecast.csv").exists()


def test_a_cell_sweep_with_forecast_shows_it_in_its_report():
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nbreplica")
    body = ("import keras, numpy as np\n"
            "m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name='cell')\n"
            "m.compile('sgd', 'mse')\n"
            "m.fit(np.zeros((64, 8), 'float32'), np.zeros((64, 2), 'float32'), batch_size=16,"
            " epochs=1, verbose=0)")
    try:
        with capture_output() as captured:
            result = shell.run_cell(f"%%replicate -n 2 --sweep 2 --repeats 2 --target-ci 0 "
                                    f"--forecast dgx-a100\n{body}")
        assert result.success, captured.stdout
        magics = shell.magics_manager.registry["ReplicateMagics"]
        assert magics.last_sweep.forecast.label == "forecast on dgx-a100"
        shown = "".join(o.data["text/plain"] for o in captured.outputs)
        assert "Forecast on dgx-a100 (split, strong scaling" in shown
    finally:
        shell.run_line_magic("unload_ext", "nbreplica")

"""Fixtures of the sweep tests: a private results file, and one shared real sweep."""

from __future__ import annotations

import pytest
from sweep_helpers import QUICK, tiny_data, tiny_model

import nbreplica
from nbreplica.bench.store import RESULTS_ENV_VAR


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Every test stores its results in its own file, never in the home directory."""
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv(RESULTS_ENV_VAR, str(path))
    return path


@pytest.fixture(autouse=True)
def restore_selection():
    before = nbreplica.selected_devices()
    yield
    nbreplica.use_devices(before)


@pytest.fixture(scope="session")
def side_by_side(tmp_path_factory) -> nbreplica.SweepResult:
    """A real sweep: split and mirrored on 1, 2 and 4 devices, 3 repeats."""
    x, y = tiny_data()
    return nbreplica.sweep(
        tiny_model, x, y, devices=(1, 2, 4), batch_size=32,
        strategy=("split", "mirrored"), repeats=3, name="side-by-side",
        results_path=tmp_path_factory.mktemp("store") / "results.sqlite", **QUICK,
    )

"""A forecast as JSON text and back (how the results file keeps a sweep's forecast)."""

from __future__ import annotations

import pandas as pd
import pytest

from nbreplica.forecasting.api import forecast_from_profiles
from nbreplica.forecasting.catalogue import CATALOGUE
from nbreplica.forecasting.flops import Work
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.profile import StepProfile
from nbreplica.forecasting.saved import forecast_from_json, forecast_to_json
from nbreplica.forecasting.step_model import Setup

PROFILE = StepProfile(
    per_replica_batch=32, replica=Work({"float32": 4e9}, 2e7, 40), merge=Work({}, 1e5, 6),
    update=Work({}, 3e6, 8), inbound={"batch": 400_000, "weights": 1_000_000},
    outbound={"gradients": 1_000_000, "activations": 4_000}, label_bytes=1_280,
    gradient_bytes=1_000_000, parameter_bytes=1_000_000)
#: A machine of no catalogue: it must come back from the text alone.
WORKSTATION = Hardware("two-cards", "2 cards on PCIe 4.0", 2, {"float32": 20e12}, 5e11, 4,
                       16, 1, 1e11, host_cores=8, sources={"gpus": "the box's label"})


@pytest.mark.parametrize("hardware", [CATALOGUE["dgx-a100"], WORKSTATION])
def test_a_forecast_comes_back_from_its_text_as_it_was(hardware):
    forecast = forecast_from_profiles("mlp", {32: PROFILE}, {1: 32, 2: 32},
                                      Setup(hardware, "split", input_cpu_seconds=1e-4),
                                      "weak")
    loaded = forecast_from_json(forecast_to_json(forecast))
    assert loaded.hardware == hardware
    pd.testing.assert_frame_equal(loaded.frame, forecast.frame)
    pd.testing.assert_frame_equal(loaded.links, forecast.links)
    assert loaded.explain() == forecast.explain()
    assert loaded.label == f"forecast on {hardware.name}"


def test_text_that_is_no_forecast_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"stored forecast cannot be read.*Received: text='\{"):
        forecast_from_json('{"model_name": "mlp"}')

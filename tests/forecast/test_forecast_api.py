"""``nbreplica.forecast``: its frame, plot, explanation and errors."""

from __future__ import annotations

import keras
import matplotlib
import pandas as pd
import pytest

import nbreplica
from forecast_models import mlp
from nbreplica.forecasting.report import plot_forecast

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model():
    return mlp()


@pytest.fixture(scope="module")
def weak(model):
    return nbreplica.forecast(model, 32, hardware="dgx1-v100")


def test_the_frame_has_a_row_per_device_count_and_the_documented_columns(weak):
    frame = weak.frame
    assert list(frame["devices"]) == [1, 2, 4, 8]
    assert {"step_s", "samples_per_s", "speedup", "efficiency", "compute_s", "weights_s",
            "gradients_s", "gradient_sum_s", "allreduce_s", "update_s", "bottleneck"} <= set(frame)
    assert frame["speedup"].iloc[0] == pytest.approx(1.0)
    assert list(frame["global_batch"]) == [32, 64, 128, 256]
    assert (frame["efficiency"] == frame["speedup"] / frame["devices"]).all()


def test_the_links_frame_says_how_long_each_link_is_busy(weak):
    links = weak.links
    assert list(links) == ["devices", "link", "busy_s"]
    eight = links[links["devices"] == 8]
    # Weights on the host: every replica's weights come down its switch's uplink.
    assert {"uplink switch0 down", "uplink switch3 down", "host-memory"} <= set(eight["link"])
    assert (eight["busy_s"] > 0).all()


def test_the_explanation_is_labelled_a_forecast_and_recommends(weak):
    text = str(weak)
    assert text.startswith("Forecast: mlp on dgx1-v100")
    assert "bound by (forecast)" in text and "Recommendations (forecast)" in text
    assert "80% efficiency" in text and "Forecast assumptions:" in text


def test_the_plot_is_titled_a_forecast_and_draws_onto_an_existing_axes(weak):
    figure = weak.plot()
    assert figure._suptitle.get_text().startswith("Forecast:")
    assert "forecast" in figure.axes[0].get_ylabel()
    axes = matplotlib.pyplot.figure().subplots()
    line = plot_forecast(weak, axes)
    assert line.get_label() == "forecast on dgx1-v100" and line.get_linestyle() == "--"


def test_a_measured_step_anchors_the_one_device_step(model):
    anchored = nbreplica.forecast(model, 32, devices=(2,), hardware="dgx-a100",
                                  strategy="mirrored", step_time=0.05)
    assert anchored.frame["step_s"].iloc[0] == pytest.approx(0.05)
    assert "anchored to the measured one-device step" in anchored.explain()


def test_an_input_pipeline_is_forecast_and_stated_in_the_assumptions(model):
    fed = nbreplica.forecast(model, 32, devices=(8,), hardware="dgx1-v100",
                             strategy="mirrored", input_cpu_seconds=0.01)
    assert list(fed.frame["bottleneck"]) == ["input pipeline on 5 host cores per GPU"] * 2
    assert fed.frame["speedup"].iloc[-1] == pytest.approx(8 * 2.2 / (3.6 - 1.4 / 8))
    assert "input pipeline: 0.01 CPU core-seconds per sample" in fed.explain()
    needed = [text for text in fed.recommendations if text.startswith("the input pipeline")]
    assert needed and "host cores per GPU instead of 5" in needed[0]
    assert "no input pipeline" in nbreplica.forecast(model, 32, devices=(2,)).explain()


def test_strong_scaling_splits_the_global_batch(model):
    strong = nbreplica.forecast(model, 64, devices=(2, 4), hardware="8xL4-pcie4",
                                scaling="strong")
    assert list(strong.frame["per_device_batch"]) == [64, 32, 16]
    assert list(strong.frame["global_batch"]) == [64, 64, 64]


def test_a_parameter_heavy_split_on_pcie_recommends_mirrored():
    inputs = keras.Input((2048,))
    heavy = keras.Model(inputs, keras.layers.Dense(2048)(inputs), name="heavy")
    heavy.compile(optimizer="sgd", loss="mse")
    forecast = nbreplica.forecast(heavy, 8, hardware="8xK80-pcie3")
    assert any(text.startswith("strategy='mirrored'") for text in forecast.recommendations)
    assert forecast.frame["efficiency"].iloc[-1] < 0.8


def test_the_catalogue_is_a_frame_of_names_and_descriptions():
    catalogue = nbreplica.hardware_catalogue()
    assert isinstance(catalogue, pd.DataFrame) and list(catalogue) == ["name", "description"]
    assert "dgx-h100" in set(catalogue["name"])


def test_an_unknown_hardware_lists_the_catalogue(model):
    with pytest.raises(ValueError, match=r"catalogue: 8xK80-pcie3, .*4xRTX4090-pcie4\. "
                                         r"Received: hardware='dgx-9000'"):
        nbreplica.forecast(model, 32, hardware="dgx-9000")


@pytest.mark.parametrize("arguments, message", [
    ({"batch_size": 0}, "batch_size must be a whole number >= 1. Received: batch_size=0"),
    ({"devices": (16,)}, "between 1 and the 8 GPUs of dgx-a100. Received: devices=(16,)"),
    ({"strategy": "ring"}, "Received: strategy='ring'"),
    ({"scaling": "both"}, "Received: scaling='both'"),
    ({"step_time": -1.0}, "Received: step_time=-1.0"),
    ({"step_time": 1e-9}, "step_time is shorter than"),
    ({"input_cpu_seconds": 0}, "Received: input_cpu_seconds=0"),
    ({"input_cpu_seconds": 1e-3, "devices": (2,), "hardware": nbreplica.Hardware(
        "box", "a box", 2, {"float32": 1e12}, 1e11, 4, 16, 1, 1e11)},
     "set Hardware(host_cores=...). Received: hardware='box' with host_cores=0"),
])
def test_bad_arguments_say_what_is_wrong(model, arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nbreplica.forecast(model, **{"batch_size": 32, **arguments})


def test_a_model_that_is_not_compiled_or_not_a_model_is_refused():
    inputs = keras.Input((3,))
    with pytest.raises(ValueError, match="call model.compile"):
        nbreplica.forecast(keras.Model(inputs, keras.layers.Dense(1)(inputs)), 8)
    with pytest.raises(TypeError, match="Received: model='resnet'"):
        nbreplica.forecast("resnet", 8)


class Eager(keras.layers.Layer):
    def call(self, x):
        return x * float(x.numpy().mean())  # needs a value: cannot be traced

    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_model_that_cannot_be_traced_says_why():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(Eager()(inputs)), name="eager")
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    with pytest.raises(ValueError, match=r"could not trace the training step of 'eager': "):
        nbreplica.forecast(model, 8)

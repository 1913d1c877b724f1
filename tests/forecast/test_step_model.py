"""The physical model on hand-made profiles: no TensorFlow, every number by hand."""

from __future__ import annotations

import pytest

from nbreplica.forecasting.catalogue import CATALOGUE
from nbreplica.forecasting.flops import Work
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.links import LINK_EFFICIENCY, link_seconds, route
from nbreplica.forecasting.profile import StepProfile
from nbreplica.forecasting.step_model import COMPUTE_EFFICIENCY, Setup, forecast_step

MB = 1e6


def profile(weights: float = 0.0, flops: float = 1e12, batch: float = 0.0) -> StepProfile:
    return StepProfile(
        per_replica_batch=32, replica=Work({"float32": flops}, 0.0, 0),
        merge=Work(), update=Work(),
        inbound={"batch": int(batch), "weights": int(weights)},
        outbound={"gradients": int(weights)}, gradient_bytes=int(weights),
        parameter_bytes=int(weights))


def speedup(step_profile: StepProfile, setup: Setup, devices: int) -> float:
    one = forecast_step(step_profile, setup, 1).seconds
    return devices * one / forecast_step(step_profile, setup, devices).seconds


@pytest.mark.parametrize("strategy", ["split", "mirrored"])
def test_pure_compute_scales_linearly(strategy):
    setup = Setup(CATALOGUE["dgx-a100"], strategy)
    assert speedup(profile(), setup, 8) == pytest.approx(8.0)


def test_compute_runs_at_the_achievable_fraction_of_the_dtype_peak():
    v100 = CATALOGUE["dgx1-v100"]
    step = forecast_step(profile(flops=1e12), Setup(v100), 1)
    assert step.parts["compute"] == pytest.approx(1e12 / (15.7e12 * COMPUTE_EFFICIENCY["matmul"]))
    a100 = forecast_step(profile(flops=1e12), Setup(CATALOGUE["dgx-a100"]), 1)
    assert a100.parts["compute"] == pytest.approx(1e12 / (156e12 * 0.6))  # TF32


def test_host_weights_share_the_pcie_switch_uplinks():
    v100 = CATALOGUE["dgx1-v100"]
    step = forecast_step(profile(weights=100 * MB), Setup(v100, cpu_merge=True), 8)
    # Two GPUs per switch: each uplink carries two replicas' weights.
    uplink = 2 * 100 * MB / (v100.pcie_bandwidth * LINK_EFFICIENCY["uplink"])
    assert step.parts["weights"] == pytest.approx(uplink)
    assert "uplink" in step.links["weights"]


def test_weights_on_the_first_gpu_travel_over_nvlink_to_its_mesh_neighbours():
    v100 = CATALOGUE["dgx1-v100"]
    assert route(v100, "gpu0", "gpu1") == ["nvlink gpu0-gpu1"]
    assert route(v100, "gpu0", "gpu4") == ["nvlink gpu0-gpu4"]
    assert "pcie gpu0 up" in route(v100, "gpu0", "gpu5")  # no NVLink between them


def test_weights_on_the_first_gpu_scale_better_through_nvswitches():
    a100 = CATALOGUE["dgx-a100"]
    assert route(a100, "gpu0", "gpu5") == ["nvlink gpu0 out", "nvlink gpu5 in"]
    heavy = profile(weights=400 * MB, flops=1e11)
    on_host = speedup(heavy, Setup(a100, cpu_merge=True), 8)
    on_gpu = speedup(heavy, Setup(a100, cpu_merge=False), 8)
    assert on_gpu > on_host


def test_mirrored_ring_all_reduce_moves_two_n_minus_one_over_n_of_the_gradients():
    a100 = CATALOGUE["dgx-a100"]
    step = forecast_step(profile(weights=100 * MB), Setup(a100, "mirrored"), 8)
    expected = 2 * 7 / 8 * 100 * MB / (a100.nvlink_bandwidth * LINK_EFFICIENCY["nvlink"])
    assert step.parts["allreduce"] == pytest.approx(expected)


def test_without_peer_to_peer_the_ring_goes_through_host_memory():
    rtx = CATALOGUE["4xRTX4090-pcie4"]
    # Written to host memory, then read from it.
    assert route(rtx, "gpu0", "gpu1") == ["pcie gpu0 up", "host-memory", "pcie gpu1 down",
                                          "host-memory"]
    busy = link_seconds(rtx, [("gpu0", "gpu1", 10 * MB), ("gpu1", "gpu0", 10 * MB)])
    assert busy["host-memory"] == pytest.approx(
        2 * 2 * 10 * MB / (rtx.host_memory_bandwidth * LINK_EFFICIENCY["host-memory"]))


def test_a_parameter_heavy_model_is_bound_by_moving_and_summing_its_weights():
    k80 = CATALOGUE["8xK80-pcie3"]
    step = forecast_step(profile(weights=500 * MB, flops=1e10), Setup(k80), 8)
    assert step.bottleneck.startswith(("weights", "gradient"))
    assert speedup(profile(weights=500 * MB, flops=1e10), Setup(k80), 8) < 2


def test_the_catalogue_cites_a_source_for_the_peaks_and_bandwidths():
    assert set(CATALOGUE) == {"8xK80-pcie3", "dgx1-p100", "dgx1-v100", "dgx-a100",
                              "dgx-h100", "8xL4-pcie4", "4xRTX4090-pcie4"}
    for machine in CATALOGUE.values():
        assert machine.sources["peak_flops"] and machine.sources["memory_bandwidth"]


def test_a_hardware_with_a_bad_topology_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"topology must be one of pcie, mesh, nvswitch\. "
                                         r"Received: topology='ring'"):
        Hardware("x", "x", 2, {"float32": 1e12}, 1e11, 4, 16, 1, 1e11, topology="ring")


def kernel_heavy() -> StepProfile:
    """A tiny model's step: few FLOPs, a merge and an update of many small ops."""
    return StepProfile(
        per_replica_batch=64, replica=Work({"float32": 2e6}, 1e5, 9),
        merge=Work({}, 1e6, 83), update=Work({}, 2e5, 28),
        inbound={"batch": 16_384, "weights": 70_000, "activations": 2_560},
        outbound={"gradients": 70_000, "activations": 2_560}, label_bytes=2_560,
        gradient_bytes=70_000, parameter_bytes=70_000)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
@pytest.mark.parametrize("cpu_merge", [True, False])
def test_weak_scaling_never_beats_linear_when_the_merge_moves_to_the_host(name, cpu_merge):
    """Moving the loss and the update to the host or the first GPU, over every
    replica's rows, cannot make a step cheaper than one GPU's own."""
    setup = Setup(CATALOGUE[name], "split", cpu_merge=cpu_merge)
    for devices in (2, 4, 8):
        if devices <= CATALOGUE[name].gpus:
            assert speedup(kernel_heavy(), setup, devices) <= devices


def test_the_merge_covers_the_rows_it_is_given():
    setup = Setup(CATALOGUE["dgx-a100"], "split", cpu_merge=False)
    merges = [forecast_step(kernel_heavy(), setup, n).parts["merge"] for n in (2, 8)]
    dispatch = 83 * 5e-6
    assert merges[1] - dispatch == pytest.approx(4 * (merges[0] - dispatch))


def test_the_input_pipeline_runs_on_each_gpus_share_of_the_host_cores_and_overlaps():
    dgx1 = CATALOGUE["dgx1-v100"]  # 40 cores, 2.2 GHz base, 3.6 GHz turbo
    fast = Setup(dgx1, "mirrored", input_cpu_seconds=1e-6)
    slow = Setup(dgx1, "mirrored", input_cpu_seconds=0.05)
    compute = forecast_step(profile(), Setup(dgx1, "mirrored"), 8).seconds
    # A pipeline faster than the GPUs hides behind their compute.
    assert forecast_step(profile(), fast, 8).seconds == pytest.approx(compute)
    one, eight = forecast_step(profile(), slow, 1), forecast_step(profile(), slow, 8)
    # 32 rows x 50 ms on 5 cores, at (3.6 - 1.4 / 8) / 3.6 of the turbo clock on one
    # GPU, at 2.2 / 3.6 with all eight busy.
    assert one.parts["input"] == pytest.approx(32 * 0.05 / (5 * (3.6 - 1.4 / 8) / 3.6))
    assert eight.seconds == eight.parts["input"] == pytest.approx(32 * 0.05 / (5 * 2.2 / 3.6))
    assert eight.bottleneck == "input pipeline on 5 host cores per GPU"
    assert speedup(profile(), slow, 8) == pytest.approx(8 * 2.2 / (3.6 - 1.4 / 8))


def test_a_host_without_known_clocks_keeps_one_clock():
    machine = Hardware("x", "x", 2, {"float32": 1e12}, 1e11, 4, 16, 1, 1e11, host_cores=4)
    assert machine.host_clock(0.5) == machine.host_clock(1.0) == 1.0
    assert CATALOGUE["dgx-a100"].host_clock(1.0) == pytest.approx(2.25 / 3.4)
    with pytest.raises(ValueError, match=r"host_turbo_clock must be at least host_base_clock\. "
                                         r"Received: host_base_clock=3\.0, host_turbo_clock=2\.0"):
        Hardware("x", "x", 2, {"float32": 1e12}, 1e11, 4, 16, 1, 1e11, host_base_clock=3.0,
                 host_turbo_clock=2.0)


def test_one_gpus_bottleneck_names_the_gpu_not_each_gpu():
    update_heavy = StepProfile(per_replica_batch=8, replica=Work({"float32": 1e3}, 0.0, 1),
                               merge=Work(), update=Work({}, 1e10, 10))
    setup = Setup(CATALOGUE["dgx-a100"], "mirrored")
    assert forecast_step(update_heavy, setup, 1).bottleneck == "optimizer update on the GPU"
    assert forecast_step(update_heavy, setup, 8).bottleneck == "optimizer update on each GPU"


def allreduce_seconds(devices: int, hardware: str, **gradients: int) -> float:
    step_profile = StepProfile(1, Work(), Work(), Work(), **gradients)
    return forecast_step(step_profile, Setup(CATALOGUE[hardware], "mirrored"), devices
                         ).parts["allreduce"]


def test_mirrored_sends_sparse_gradients_through_the_first_gpu_and_back():
    # Into the first GPU: the rows of n - 1 GPUs; out of it, to each of the n - 1
    # others: every GPU's rows. On PCIe both directions of its link run at one rate.
    two, eight = (allreduce_seconds(n, "8xL4-pcie4", sparse_gradient_bytes=int(100 * MB))
                  for n in (2, 8))
    assert eight / two == pytest.approx((7 + 7 * 8) / (1 + 1 * 2), rel=1e-3)


def test_mirrored_reduces_dense_and_sparse_gradients_one_after_the_other():
    dense, sparse = {"gradient_bytes": int(100 * MB)}, {"sparse_gradient_bytes": int(100 * MB)}
    assert allreduce_seconds(4, "dgx-a100", **dense, **sparse) == pytest.approx(
        allreduce_seconds(4, "dgx-a100", **dense) + allreduce_seconds(4, "dgx-a100", **sparse))

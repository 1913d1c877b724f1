"""snapshot(), nvml_status() and driver_version() against the fake driver."""

import dataclasses
import os
import sys

import pytest

import nbreplica
from nbreplica import _startup
from nbreplica.gpus import emulation
from nbreplica.devices import DeviceStats, ProcessInfo, nvml
from nbreplica.testing import GIB, QUERIES, FakeGpu, FakeProcess, fake_nvml, this_process

# Which DeviceStats fields each NVML query feeds.
FIELDS_OF_QUERY = {
    "name": ["name"],
    "uuid": ["uuid"],
    "memory": ["memory_used", "memory_free", "memory_total"],
    "utilization": ["utilization_gpu", "utilization_memory"],
    "temperature": ["temperature"],
    "power_draw": ["power_draw"],
    "power_limit": ["power_limit"],
    "processes": ["processes"],
    "cores": ["cuda_cores"],
    "clocks": ["max_sm_clock_mhz"],
}
METRIC_FIELDS = [f for fields in FIELDS_OF_QUERY.values() for f in fields]


def busy_gpu(**overrides):
    settings = dict(
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-12345678-aaaa-bbbb-cccc-1234567890ab",
        memory_total=80 * GIB,
        memory_used=30 * GIB,
        utilization_gpu=87,
        utilization_memory=41,
        temperature=66,
        power_draw=512.25,
        power_limit=700.0,
        processes=(FakeProcess(4242, "/usr/bin/python3", 29 * GIB),
                   FakeProcess(4343, "trainer", None)),
        cuda_cores=16896,  # an H100 SXM's
        max_sm_clock_mhz=1980,
    )
    return FakeGpu(**{**settings, **overrides})


def test_every_field_comes_through_pynvml():
    with fake_nvml(busy_gpu(), FakeGpu(), driver_version="550.54.15") as driver:
        first, second = nbreplica.snapshot()
        assert nbreplica.driver_version() == "550.54.15"
    assert first == DeviceStats(
        index=0,
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-12345678-aaaa-bbbb-cccc-1234567890ab",
        memory_used=30 * GIB,
        memory_free=50 * GIB,
        memory_total=80 * GIB,
        utilization_gpu=87,
        utilization_memory=41,
        temperature=66,
        power_draw=512.25,
        power_limit=700.0,
        processes=(ProcessInfo(4242, "/usr/bin/python3", 29 * GIB),
                   ProcessInfo(4343, "trainer", None)),
        simulated=True,
        cuda_cores=16896,
        max_sm_clock_mhz=1980,
    )
    assert second.index == 1 and second.processes == () and second.memory_used == 0
    assert (second.cuda_cores, second.max_sm_clock_mhz) == (6912, 1410)  # the defaults
    assert second.uuid != first.uuid
    assert driver.callback_errors == []


def test_status_says_ready_and_simulated():
    with fake_nvml(FakeGpu(), FakeGpu(), driver_version="550.54.15"):
        status = nbreplica.nvml_status()
    assert status.startswith("NVML ready: 2 GPUs, driver 550.54.15")
    assert "simulated" in status
    assert "\n" not in status


def test_values_follow_the_script_over_time(clock):
    gpu = FakeGpu(memory_used=[1 * GIB, 5 * GIB, 9 * GIB],
                  utilization_gpu=lambda t: 10 * t, temperature=[40, 70])
    with fake_nvml(gpu, clock=clock, step=2.0):
        seen = []
        for clock.now in (0.0, 1.9, 2.0, 4.5, 99.0):
            (device,) = nbreplica.snapshot()
            seen.append((device.memory_used // GIB, device.utilization_gpu, device.temperature))
    assert seen == [(1, 0, 40), (1, 19, 40), (5, 20, 70), (9, 45, 70), (9, 100, 70)]


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_an_unsupported_query_leaves_only_its_fields_missing(query):
    with fake_nvml(busy_gpu(unsupported={query})) as driver:
        (device,) = nbreplica.snapshot()
    missing = {f for f in METRIC_FIELDS if getattr(device, f) is None}
    assert missing == set(FIELDS_OF_QUERY[query])
    assert not device.lost
    assert driver.callback_errors == []


def test_no_permission_for_processes_makes_them_unknown_not_empty():
    with fake_nvml(busy_gpu(forbidden={"processes"})):
        (device,) = nbreplica.snapshot()
    assert device.processes is None
    assert device.other_processes() is None
    assert device.memory_used == 30 * GIB


def test_other_processes_leaves_out_this_process():
    gpu = busy_gpu(processes=(FakeProcess(os.getpid(), "kernel", GIB), FakeProcess(7, "x", GIB)))
    with fake_nvml(gpu):
        (device,) = nbreplica.snapshot()
    assert [p.pid for p in device.processes] == sorted([os.getpid(), 7])
    assert [p.pid for p in device.other_processes()] == [7]


def test_own_process_marks_the_gpus_this_process_holds_and_its_memory():
    with fake_nvml(busy_gpu(processes=(this_process(3 * GIB), FakeProcess(7, "x", GIB))),
                   busy_gpu(), busy_gpu(forbidden={"processes"})):
        held, other, unknown = nbreplica.snapshot()
    assert held.own_process() == ProcessInfo(os.getpid(), sys.executable, 3 * GIB)
    assert other.own_process() is None and unknown.own_process() is None


@pytest.mark.parametrize(
    "init_error, reason",
    [
        ("library_not_found", "NVIDIA driver not installed"),
        ("driver_not_loaded", "NVIDIA driver not loaded"),
        ("no_permission", "no permission to use the NVIDIA driver"),
    ],
)
def test_without_nvml_snapshot_is_empty_and_status_says_why(init_error, reason):
    with fake_nvml(FakeGpu(), init_error=init_error) as driver:
        assert nbreplica.snapshot() == []
        assert nbreplica.driver_version() is None
        status = nbreplica.nvml_status()
        assert nbreplica.snapshot() == []
    assert status.startswith(reason)
    assert "simulated" in status
    assert driver.calls["nvmlInitWithFlags"] == 1  # the failure is remembered


def test_a_lost_gpu_is_marked_and_the_others_keep_reporting(clock):
    with fake_nvml(FakeGpu(utilization_gpu=5), busy_gpu(lost_at=3.0), FakeGpu(utilization_gpu=7),
                   clock=clock) as driver:
        before = nbreplica.snapshot()
        clock.now = 3.0
        after = nbreplica.snapshot()
    assert [d.lost for d in before] == [False, False, False]
    assert [d.lost for d in after] == [False, True, False]
    lost = after[1]
    assert (lost.name, lost.uuid) == (before[1].name, before[1].uuid)
    assert all(getattr(lost, f) is None for f in METRIC_FIELDS if f not in ("name", "uuid"))
    assert [after[0].utilization_gpu, after[2].utilization_gpu] == [5, 7]
    assert driver.callback_errors == []


def test_a_gpu_lost_from_the_start_has_no_name():
    with fake_nvml(FakeGpu(lost_at=0.0)):
        (device,) = nbreplica.snapshot()
    assert device.lost and device.name is None and device.index == 0


def test_an_older_driver_is_read_through_the_older_calls():
    with fake_nvml(busy_gpu(), missing_functions={"nvmlDeviceGetMemoryInfo_v2",
                                                  "nvmlDeviceGetTemperatureV"}) as driver:
        (device,) = nbreplica.snapshot()
    assert (device.memory_used, device.memory_free, device.temperature) == (30 * GIB, 50 * GIB, 66)
    assert driver.calls["nvmlDeviceGetMemoryInfo"] == 1
    assert driver.calls["nvmlDeviceGetTemperature"] == 1


def test_emulated_gpus_are_labelled_and_report_nothing_they_cannot_know(monkeypatch):
    monkeypatch.setattr(emulation, "_emulated_count", 3)
    with fake_nvml(init_error="driver_not_loaded"):
        devices = nbreplica.snapshot()
    assert [d.index for d in devices] == [0, 1, 2]
    for device in devices:
        assert device.emulated and not device.simulated and not device.lost
        assert "Emulated GPU" in device.name
        assert all(getattr(device, f) is None for f in METRIC_FIELDS if f != "name")
        assert device.metrics() == {}


def test_nvml_gpus_win_over_emulated_ones(monkeypatch):
    monkeypatch.setattr(emulation, "_emulated_count", 3)
    with fake_nvml(FakeGpu()):
        devices = nbreplica.snapshot()
    assert len(devices) == 1 and not devices[0].emulated


def test_env_var_gives_a_notebook_kernel_simulated_gpus(monkeypatch):
    monkeypatch.setenv(_startup.FAKE_NVML_ENV_VAR, "3")
    library, fake = nvml.swap_library(None, fake=False)  # as in a fresh process
    try:
        _startup.install_fake_nvml_from_env()
        devices = nbreplica.snapshot()
        status = nbreplica.nvml_status()
    finally:
        nvml.swap_library(library, fake=fake)
    assert len(devices) == 3 and all(d.simulated for d in devices)
    assert all(d.memory_total and d.utilization_gpu is not None for d in devices)
    assert "simulated" in status


def test_a_malformed_env_var_names_the_variable(monkeypatch):
    monkeypatch.setenv(_startup.FAKE_NVML_ENV_VAR, "eight")
    with pytest.raises(ValueError) as raised:
        _startup.install_fake_nvml_from_env()
    assert str(raised.value) == (
        "NBREPLICA_FAKE_NVML must be a whole number of devices >= 1. "
        "Received: NBREPLICA_FAKE_NVML='eight'"
    )


def test_nvml_starts_on_first_use_once_and_stops_when_swapped_out():
    with fake_nvml(FakeGpu()) as driver:
        assert driver.calls["nvmlInitWithFlags"] == 0
        nbreplica.snapshot()
        nbreplica.snapshot()
        nbreplica.nvml_status()
        assert driver.calls["nvmlInitWithFlags"] == 1
        assert driver.calls["nvmlDeviceGetName"] == 1  # identities are read once
    assert driver.calls["nvmlShutdown"] == 1


def test_records_are_frozen():
    with fake_nvml(FakeGpu()):
        (device,) = nbreplica.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        device.memory_used = 0

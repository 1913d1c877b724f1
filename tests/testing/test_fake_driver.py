"""The fake driver speaks NVML's C ABI: pynvml's own functions read it correctly."""

import math
import os
import subprocess
import sys

import pynvml
import pytest

import nbreplica
from nbreplica.devices import nvml
from nbreplica.testing import (
    GIB,
    FakeDriver,
    FakeGpu,
    FakeProcess,
    fake_nvml,
    plausible_gpus,
)
from nbreplica.testing.plausible import mixed_gpus


@pytest.fixture
def gpu():
    return FakeGpu(name="Tesla V100-SXM2-16GB", memory_total=16 * GIB, memory_used=3 * GIB,
                   utilization_gpu=55, utilization_memory=12, temperature=61,
                   power_draw=181.5, power_limit=300.0, cuda_cores=5120, max_sm_clock_mhz=1530,
                   processes=[FakeProcess(100 + i, f"proc{i}", i * GIB) for i in range(7)])


@pytest.fixture
def session(gpu):
    with fake_nvml(gpu, FakeGpu()) as driver:
        pynvml.nvmlInit()
        yield driver, pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlShutdown()
    assert driver.callback_errors == []


def test_pynvml_reads_every_scripted_value(session):
    _, handle = session
    assert pynvml.nvmlDeviceGetCount() == 2
    assert pynvml.nvmlDeviceGetName(handle) == "Tesla V100-SXM2-16GB"
    assert pynvml.nvmlDeviceGetUUID(handle).startswith("GPU-")
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    assert (memory.total, memory.used, memory.free, memory.reserved) == (
        16 * GIB, 3 * GIB, 13 * GIB, 0)
    legacy = pynvml.nvmlDeviceGetMemoryInfo(handle)
    assert (legacy.total, legacy.used, legacy.free) == (16 * GIB, 3 * GIB, 13 * GIB)
    rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
    assert (rates.gpu, rates.memory) == (55, 12)
    assert pynvml.nvmlDeviceGetTemperatureV(handle, pynvml.NVML_TEMPERATURE_GPU) == 61
    assert pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU) == 61
    assert pynvml.nvmlDeviceGetPowerUsage(handle) == 181500
    assert pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) == 300000
    assert pynvml.nvmlSystemGetProcessName(103) == "proc3"
    assert pynvml.nvmlSystemGetDriverVersion() == "555.42.06"
    assert pynvml.nvmlDeviceGetNumGpuCores(handle) == 5120
    assert pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM) == 1530
    with pytest.raises(pynvml.NVMLError_NotSupported):  # only SM (and graphics) clocks
        pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)


def test_process_lists_follow_the_two_call_protocol(session):
    _, handle = session
    processes = pynvml.nvmlDeviceGetComputeRunningProcesses_v3(handle)
    assert [(p.pid, p.usedGpuMemory) for p in processes] == [(100 + i, i * GIB) for i in range(7)]
    assert pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3(handle) == []
    other = pynvml.nvmlDeviceGetHandleByIndex(1)
    assert pynvml.nvmlDeviceGetComputeRunningProcesses_v3(other) == []


def test_unavailable_process_memory_reads_as_none():
    with fake_nvml(FakeGpu(processes=[FakeProcess(5, "wddm", None)])):
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        (process,) = pynvml.nvmlDeviceGetComputeRunningProcesses_v3(handle)
        pynvml.nvmlShutdown()
    assert process.usedGpuMemory is None


def test_wrong_struct_versions_and_handles_are_refused(session):
    _, handle = session
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        pynvml.nvmlDeviceGetMemoryInfo(handle, version=0x01000028)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(2)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetTemperature(handle, 1)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlSystemGetProcessName(99999)


def test_calls_before_init_or_after_shutdown_are_uninitialized():
    with fake_nvml(FakeGpu()):
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlSystemGetDriverVersion()


def test_failures_reach_pynvml_as_its_own_exceptions():
    now = [0.0]
    gpu = FakeGpu(unsupported={"power_draw"}, forbidden={"processes"}, lost_at=0.5)
    with fake_nvml(gpu, clock=lambda: now[0]):
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetPowerUsage(handle)
        with pytest.raises(pynvml.NVMLError_NoPermission):
            pynvml.nvmlDeviceGetComputeRunningProcesses_v3(handle)
        assert pynvml.nvmlDeviceGetName(handle) == gpu.name
        now[0] = 0.5
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            pynvml.nvmlDeviceGetName(handle)
        pynvml.nvmlShutdown()


def test_missing_functions_are_not_found():
    with fake_nvml(FakeGpu(), missing_functions={"nvmlDeviceGetPowerUsage"}):
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_FunctionNotFound):
            pynvml.nvmlDeviceGetPowerUsage(handle)
        pynvml.nvmlShutdown()


def test_error_strings_come_from_the_driver():
    with fake_nvml(FakeGpu()):
        assert pynvml.nvmlErrorString(4711) == "Fake NVML error 4711"


def test_an_exception_in_a_script_answers_unknown_and_is_recorded():
    def broken(elapsed):
        return 1 / 0

    with fake_nvml(FakeGpu(utilization_gpu=broken, temperature=50)) as driver:
        (device,) = nbreplica.snapshot()
    assert device.utilization_gpu is None and device.temperature == 50
    assert [(name, type(exc)) for name, exc in driver.callback_errors] == [
        ("nvmlDeviceGetUtilizationRates", ZeroDivisionError)]


def test_install_restores_what_was_there_and_nests():
    outer, inner = FakeDriver(FakeGpu(name="outer")), FakeDriver(FakeGpu(name="inner"))
    before = pynvml.nvmlLib
    outer.install()
    try:
        with pytest.raises(RuntimeError, match="already installed"):
            outer.install()
        inner.install()
        assert nbreplica.snapshot()[0].name == "inner"
        inner.uninstall()
        assert nbreplica.snapshot()[0].name == "outer"
    finally:
        outer.uninstall()
    assert pynvml.nvmlLib is before
    assert not nvml.status().endswith("nbreplica.testing)")


def test_values_are_clamped_like_a_driver_would():
    with fake_nvml(FakeGpu(memory_total=GIB, memory_used=2 * GIB, utilization_gpu=130)):
        (device,) = nbreplica.snapshot()
    assert (device.memory_used, device.memory_free, device.utilization_gpu) == (GIB, 0, 100)


def test_plausible_gpus_look_like_a_shared_machine():
    gpus = plausible_gpus(8)
    busy = [i for i, gpu in enumerate(gpus) if gpu.processes]
    assert busy == [1, 4, 7]
    with fake_nvml(*gpus) as driver:
        readings = [nbreplica.snapshot() for _ in range(3)]
    assert driver.callback_errors == []
    for devices in readings:
        for device in devices:
            assert 0 < device.memory_used < device.memory_total
            assert 0 <= device.utilization_gpu <= 100
            assert 25 <= device.temperature <= 90
            assert 0 < device.power_draw < device.power_limit
            assert (device.utilization_gpu > 70) == (device.index in busy)
    memory_curve = [gpus[0].memory_used(t) for t in range(20)]
    assert not math.isclose(min(memory_curve), max(memory_curve))


def test_the_mixed_machine_has_two_kinds_of_gpu_with_different_free_memory():
    with fake_nvml(*mixed_gpus()) as driver:
        devices = nbreplica.snapshot()
    assert driver.callback_errors == []
    assert [d.name for d in devices] == ["NVIDIA A100-SXM4-80GB"] * 2 + ["Tesla T4"] * 2
    assert [d.memory_free / GIB for d in devices] == [72, 50, 12, 9]
    assert [(d.cuda_cores, d.max_sm_clock_mhz) for d in devices] == [
        (6912, 1410), (6912, 1410), (2560, 1590), (2560, 1590)]


def test_nbreplica_fake_nvml_mixed_installs_the_mixed_machine():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NBREPLICA_")}
    done = subprocess.run(
        [sys.executable, "-c", "import nbreplica\n"
         "print([(d.name, d.memory_free >> 30) for d in nbreplica.snapshot()])"],
        env={**environment, "NBREPLICA_FAKE_NVML": "mixed"}, capture_output=True, text=True,
        timeout=120, check=True)
    assert done.stdout.strip() == (
        "[('NVIDIA A100-SXM4-80GB', 72), ('NVIDIA A100-SXM4-80GB', 50), "
        "('Tesla T4', 12), ('Tesla T4', 9)]")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: FakeGpu(name=""), "name must be a non-empty string. Received: name=''"),
        (lambda: FakeGpu(memory_total=0), "Received: memory_total=0"),
        (lambda: FakeGpu(unsupported={"fan"}), "Received: unsupported={'fan'}"),
        (lambda: FakeGpu(forbidden="processes"), "Received: forbidden='processes'"),
        (lambda: FakeGpu(lost_at=-1), "Received: lost_at=-1"),
        (lambda: FakeGpu(cuda_cores=0), "cuda_cores must be a whole number > 0. "
                                        "Received: cuda_cores=0"),
        (lambda: FakeGpu(max_sm_clock_mhz=1.5e3), "Received: max_sm_clock_mhz=1500.0"),
        (lambda: FakeDriver("gpu"), "Every GPU must be a FakeGpu. Received: 'gpu'"),
        (lambda: FakeDriver(init_error="boom"), "Received: init_error='boom'"),
        (lambda: FakeDriver(missing_functions={"nvmlFoo"}),
         "Received: missing_functions={'nvmlFoo'}"),
        (lambda: FakeDriver(step=0), "step must be a number of seconds > 0. Received: step=0"),
    ],
)
def test_bad_scripts_are_named(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert message in str(info.value)


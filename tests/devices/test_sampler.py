"""Sampler: background sampling, the tidy frame and the per-device summaries."""

import time

import pandas as pd
import pytest

import nbreplica
from nbreplica.devices import DeviceStats
from nbreplica.testing import GIB, FakeGpu, fake_nvml


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Script:
    """A source that plays back snapshots, then repeats the last one."""

    def __init__(self, *snapshots):
        self.snapshots = list(snapshots)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.snapshots[min(self.calls, len(self.snapshots)) - 1]


def stats(index, used=None, utilization=None):
    return DeviceStats(index, "gpu", memory_used=used, utilization_gpu=utilization)


SCRIPT = [
    [stats(0, 5, 10), stats(1, None, None)],
    [stats(0, 9, 30), stats(1, 2, None)],
    [stats(0, 7, 50), stats(1, 1, 60)],
]


def run(sampler, samples):
    with sampler:
        wait_until(lambda: sampler.sample_count >= samples)
    return sampler


def test_summaries_cover_every_sample():
    sampler = run(nbreplica.Sampler(interval=0.001, source=Script(*SCRIPT)), 3)
    n = sampler.sample_count
    assert sampler.peak_memory() == {0: 9, 1: 2}
    # the last snapshot repeats for samples after the third
    assert sampler.mean_utilization() == pytest.approx({0: (10 + 30 + 50 * (n - 2)) / n, 1: 60})


def test_to_frame_is_tidy_and_leaves_out_missing_metrics():
    sampler = run(nbreplica.Sampler(interval=0.001, source=Script(*SCRIPT)), 3)
    frame = sampler.to_frame()
    assert list(frame.columns) == ["time", "device", "metric", "value"]
    assert [str(frame[c].dtype) for c in ("time", "device", "value")] == [
        "float64", "int64", "float64"]
    assert pd.api.types.is_string_dtype(frame.metric)
    first = frame[frame.time == frame.time.min()]
    assert sorted(map(tuple, first[["device", "metric", "value"]].values.tolist())) == [
        (0, "memory_used", 5.0), (0, "utilization_gpu", 10.0)]
    assert frame.time.is_monotonic_increasing and frame.time.min() >= 0
    assert frame.attrs["simulated"] is False


def test_the_buffer_is_bounded_but_the_summaries_are_not():
    script = Script([stats(0, 100, 0)], *[[stats(0, 1, 0)]] * 20)
    sampler = run(nbreplica.Sampler(interval=0.001, capacity=3, source=script), 10)
    assert sampler.to_frame().time.nunique() == 3
    assert 100.0 not in sampler.to_frame().value.values
    assert sampler.peak_memory() == {0: 100}


def test_devices_without_metrics_give_empty_summaries():
    emulated = [DeviceStats(0, "Emulated GPU 0", emulated=True)]
    sampler = run(nbreplica.Sampler(interval=0.001, source=lambda: emulated), 2)
    assert sampler.peak_memory() == {0: None}
    assert sampler.mean_utilization() == {0: None}
    assert sampler.to_frame().empty


def test_against_the_fake_driver_one_nvml_pass_per_sample():
    gpus = [FakeGpu(memory_used=lambda t: 2 * GIB + t * 1e6, utilization_gpu=40), FakeGpu()]
    with fake_nvml(*gpus) as driver:
        sampler = run(nbreplica.Sampler(interval=0.01), 5)
        passes = driver.calls["nvmlDeviceGetUtilizationRates"]
    assert passes == 2 * sampler.sample_count
    assert sampler.mean_utilization() == {0: 40.0, 1: 0.0}
    assert sampler.peak_memory()[0] > 2 * GIB
    assert sampler.to_frame().attrs["simulated"] is True
    assert set(sampler.to_frame().metric) == {
        "memory_used", "memory_free", "memory_total", "utilization_gpu",
        "utilization_memory", "temperature", "power_draw", "power_limit"}


def test_an_error_stops_sampling_and_is_kept_not_raised():
    def broken():
        raise OSError("sensor on fire")

    sampler = nbreplica.Sampler(interval=0.001, source=broken)
    with pytest.warns(RuntimeWarning, match="nbreplica-sampler stopped after an error"):
        sampler.start()
        wait_until(lambda: not sampler.running)
    sampler.stop()
    assert isinstance(sampler.error, OSError)
    assert sampler.sample_count == 0 and sampler.to_frame().empty


def test_stop_returns_at_once_even_with_a_long_interval():
    sampler = nbreplica.Sampler(interval=60, source=lambda: [])
    sampler.start()
    wait_until(lambda: sampler.sample_count == 1)
    began = time.monotonic()
    sampler.stop()
    assert time.monotonic() - began < 1.0
    assert not sampler.running and sampler.error is None


def test_start_twice_is_an_error_and_restart_appends():
    sampler = nbreplica.Sampler(interval=0.001, source=lambda: [stats(0, 1, 1)])
    with sampler:
        with pytest.raises(RuntimeError, match="already running"):
            sampler.start()
        wait_until(lambda: sampler.sample_count >= 2)
    first = sampler.sample_count
    run(sampler, first + 2)
    assert sampler.sample_count >= first + 2
    assert sampler.to_frame().time.is_monotonic_increasing


@pytest.mark.parametrize("interval", [0, -1, "1", True, None])
def test_bad_interval_is_named(interval):
    with pytest.raises(ValueError, match=r"interval must be a number of seconds > 0\. "
                                         rf"Received: interval={interval!r}"):
        nbreplica.Sampler(interval=interval)


@pytest.mark.parametrize("capacity", [0, 2.5])
def test_bad_capacity_is_named(capacity):
    with pytest.raises(ValueError, match=rf"Received: capacity={capacity!r}"):
        nbreplica.Sampler(capacity=capacity)

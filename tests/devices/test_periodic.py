"""Periodic: the background thread behind the GPU picker and the Sampler."""

import threading
import time

from nbreplica.devices.periodic import Periodic


def test_the_first_tick_runs_at_once_by_default():
    ticked = threading.Event()
    periodic = Periodic(ticked.set, 60.0, "test-periodic")
    periodic.start()
    try:
        assert ticked.wait(10)
    finally:
        periodic.stop()


def test_the_first_tick_can_wait_one_interval():
    ticked = []
    started = time.monotonic()
    periodic = Periodic(lambda: ticked.append(time.monotonic()), 0.2, "test-periodic")
    periodic.start(immediately=False)
    try:
        deadline = time.monotonic() + 10
        while not ticked:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        periodic.stop()
    assert ticked[0] - started >= 0.2


def test_stop_during_the_first_wait_ends_the_thread_without_a_tick():
    ticks = []
    periodic = Periodic(lambda: ticks.append(1), 60.0, "test-periodic")
    periodic.start(immediately=False)
    stopping = time.monotonic()
    periodic.stop()
    assert time.monotonic() - stopping < 5
    assert not periodic.running and ticks == []

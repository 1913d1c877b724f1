"""The default device selection and its listeners."""

import threading
import time

import pytest

import nbreplica
from nbreplica.gpus import chosen


@pytest.fixture(autouse=True)
def no_selection():
    nbreplica.use_devices(None)
    yield
    nbreplica.use_devices(None)


@pytest.fixture
def observe():
    """observe_selection, with every listener unregistered after the test."""
    unsubscribes = []

    def register(listener):
        unsubscribes.append(chosen.observe_selection(listener))
        return unsubscribes[-1]

    yield register
    for unsubscribe in unsubscribes:
        unsubscribe()


def test_listeners_get_each_change_until_they_unsubscribe(observe):
    seen = []
    unsubscribe = observe(seen.append)
    nbreplica.use_devices([3, 1])
    nbreplica.use_devices((1, 3))  # the same selection: not a change
    nbreplica.use_devices(None)
    unsubscribe()
    unsubscribe()
    nbreplica.use_devices([2])
    assert seen == [(1, 3), None]


def test_a_failing_listener_is_reported_and_the_change_goes_ahead(observe):
    def broken(_):
        raise KeyError("gone")

    seen = []
    observe(broken)
    observe(seen.append)
    with pytest.warns(RuntimeWarning, match=r"Selection listener .*broken.* failed: KeyError"):
        nbreplica.use_devices([0, 1])
    assert nbreplica.selected_devices() == (0, 1) and seen == [(0, 1)]


def test_a_listener_changing_the_selection_leaves_the_others_only_the_newer_one(observe):
    def widen(current):
        if current == (1,):
            nbreplica.use_devices([1, 2])

    seen = []
    observe(widen)
    observe(seen.append)
    nbreplica.use_devices([1])
    assert nbreplica.selected_devices() == (1, 2) and seen == [(1, 2)]


def test_changes_from_many_threads_reach_listeners_one_at_a_time_in_order(observe):
    seen = []
    running = []
    most_at_once = []

    def listener(current):
        running.append(current)
        time.sleep(0.0001)  # lets another thread's change in, if nothing holds it back
        most_at_once.append(len(running))
        seen.append(current)
        running.pop()

    observe(listener)
    start = threading.Barrier(8)

    def change(offset):
        start.wait()
        for step in range(200):
            nbreplica.use_devices([(offset + step) % 5] if step % 7 else None)

    threads = [threading.Thread(target=change, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most_at_once) == 1
    assert seen and seen[-1] == nbreplica.selected_devices()
    assert all(before != after for before, after in zip(seen, seen[1:]))

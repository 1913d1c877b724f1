"""Several threads reading at once, and the shutdown at interpreter exit."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import nbreplica
from nbreplica.testing import FakeGpu, fake_nvml, plausible_gpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_threads_reading_at_once_share_one_nvml_start(clock):
    results, failures = [], []
    start = threading.Barrier(8)

    def read():
        try:
            start.wait()
            for _ in range(25):
                results.append(nbreplica.snapshot())
        except Exception as exc:
            failures.append(exc)

    with fake_nvml(*plausible_gpus(8), clock=clock) as driver:
        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        expected = nbreplica.snapshot()
    assert failures == [] and driver.callback_errors == []
    assert driver.calls["nvmlInitWithFlags"] == 1
    assert len(results) == 200
    assert all(devices == expected for devices in results)


def test_a_gpu_lost_while_threads_read_stays_lost_for_each(clock):
    histories = [[] for _ in range(4)]

    def read(history):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and history[-1:] != [(False, True)]:
            history.append(tuple(d.lost for d in nbreplica.snapshot()))
        for _ in range(5):
            history.append(tuple(d.lost for d in nbreplica.snapshot()))

    with fake_nvml(FakeGpu(), FakeGpu(lost_at=1.0), clock=clock):
        threads = [threading.Thread(target=read, args=(h,)) for h in histories]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        clock.now = 1.0
        for thread in threads:
            thread.join(30)
    for history in histories:
        first_lost = history.index((False, True))
        assert set(history[:first_lost]) <= {(False, False)}
        assert set(history[first_lost:]) == {(False, True)}


def test_nvml_and_samplers_shut_down_at_interpreter_exit():
    script = textwrap.dedent("""
        import atexit
        state = {}
        # Registered first, so it runs last: after nbreplica's own exit handlers.
        atexit.register(lambda: print("open-sessions", state["driver"]._init_count,
                                      "sampler-running", state["sampler"].running))
        import nbreplica
        from nbreplica.testing import FakeDriver, FakeGpu
        state["driver"] = FakeDriver(FakeGpu(), FakeGpu()).install()
        state["sampler"] = nbreplica.Sampler(interval=0.01).start()
        print("devices", len(nbreplica.snapshot()))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBREPLICA_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["devices", "2", "open-sessions", "0",
                                   "sampler-running", "False"]

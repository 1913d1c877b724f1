"""The device layer against a real NVIDIA driver: what it reports and what it costs.

For a machine with an NVIDIA GPU; needs only nvidia-ml-py and pandas (the device layer
loads no TensorFlow). It prints:

1. NVML's status line, the driver version and every field of each device's record;
   a field the driver left empty is listed (on a data-center GPU all should be there);
2. the time of one full NVML pass (``nbreplica.snapshot()``), median of 500;
3. a ``Sampler`` at 10 Hz over a busy GPU: when a second process (PyTorch, if present)
   runs matrix products on GPU 0, the sampled utilization and memory rise, the process
   shows in ``processes`` with its memory, and ``free_gpus()`` no longer lists GPU 0.

Exits with status 1 when one of those expectations fails.
Run: ``PYTHONPATH=. python benchmarks/bench_nvml_driver.py``
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import time

import nbreplica

BUSY_SECONDS = 12
# Runs in a child process so that its GPU context is another process's, as a
# colleague's job would be.
BUSY_GPU_0 = f"""
import time, torch
a = torch.randn(8192, 8192, device="cuda:0")
end = time.monotonic() + {BUSY_SECONDS}
while time.monotonic() < end:
    a = (a @ a).tanh()
torch.cuda.synchronize()
"""


def main() -> int:
    problems = []
    print(nbreplica.nvml_status())
    print("driver", nbreplica.driver_version())
    devices = nbreplica.snapshot()
    if not devices or devices[0].simulated or devices[0].emulated:
        print("No real NVIDIA GPU here.")
        return 1
    for device in devices:
        print(device)
        empty = [f.name for f in dataclasses.fields(device)
                 if getattr(device, f.name) is None]
        if empty:
            problems.append(f"GPU {device.index} reported no {', '.join(empty)}")

    seconds = []
    for _ in range(500):
        began = time.perf_counter()
        nbreplica.snapshot()
        seconds.append(time.perf_counter() - began)
    print(f"one NVML pass over {len(devices)} GPU(s): "
          f"{statistics.median(seconds) * 1e3:.3f} ms median of 500")

    try:
        import torch  # noqa: F401  (only to know whether a load can be made)
    except ImportError:
        print("PyTorch is absent: the busy-GPU check is left out.")
        return _verdict(problems)
    idle_free = nbreplica.free_gpus()
    with nbreplica.Sampler(interval=0.1) as sampler:
        load = subprocess.Popen([sys.executable, "-c", BUSY_GPU_0])
        busy = _wait_until_busy(deadline=time.monotonic() + BUSY_SECONDS)
        busy_free = nbreplica.free_gpus()
        load.wait(timeout=120)
    frame = sampler.to_frame()
    print(f"sampler: {sampler.sample_count} samples; per metric of GPU 0:")
    print(frame[frame["device"] == 0].groupby("metric")["value"].agg(["min", "median", "max"]))
    print(f"while busy: {busy}")
    print(f"free GPUs idle {idle_free}, while busy {busy_free}")
    peak = sampler.peak_memory().get(0)
    utilization = sampler.mean_utilization().get(0)
    if not busy.utilization_gpu or busy.utilization_gpu < 50:
        problems.append(f"utilization while busy was {busy.utilization_gpu}")
    if load.pid not in [p.pid for p in busy.processes or ()]:
        problems.append(f"the busy process {load.pid} was not listed: {busy.processes}")
    if 0 in busy_free:
        problems.append("GPU 0 was called free while busy")
    print(f"sampler peak memory GPU 0: {peak}, mean utilization: {utilization}")
    return _verdict(problems)


def _wait_until_busy(deadline: float) -> nbreplica.DeviceStats:
    """GPU 0's record once a kernel keeps it over half busy (or at ``deadline``):
    the child process needs a few seconds to start CUDA first."""
    while True:
        device = nbreplica.snapshot()[0]
        if (device.utilization_gpu or 0) > 50 or time.monotonic() > deadline:
            return device
        time.sleep(0.1)


def _verdict(problems: list[str]) -> int:
    for problem in problems:
        print("PROBLEM:", problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

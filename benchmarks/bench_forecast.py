"""What a forecast costs: ``nbreplica.forecast`` of ResNet-50 (keras.applications,
``weights=None``) at 64 images per device on 1 to 8 devices, timed on this machine.

The model is built and compiled first, outside the timing; the time is the whole
forecast: tracing the replicated step over two emulated devices, counting its traffic
and work, and the physical model for every device count.

    python benchmarks/bench_forecast.py [--hardware dgx-a100] [--strategy split]
"""

from __future__ import annotations

import argparse
import time

from _quiet import start_tensorflow

tf = start_tensorflow(emulate=2)

import keras  # noqa: E402

import nbreplica  # noqa: E402

PER_DEVICE = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="dgx-a100")
    parser.add_argument("--strategy", default="split", choices=("split", "mirrored"))
    args = parser.parse_args()
    model = keras.applications.ResNet50(weights=None)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    started, cpu = time.perf_counter(), time.process_time()
    forecast = nbreplica.forecast(model, PER_DEVICE, devices=range(1, 9),
                                  hardware=args.hardware, strategy=args.strategy)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(forecast)
    print(f"\nforecast cost: {seconds:.1f} s wall, {cpu:.1f} s CPU, for ResNet-50 at "
          f"{PER_DEVICE} per device on 1-8 devices ({args.strategy}, {args.hardware}); "
          "target <= 30 s")


if __name__ == "__main__":
    main()

"""What a forecast costs: ``nbreplica.forecast`` of ResNet-50 (keras.applications,
``weights=None``) at 64 images per device on 1 to 8 devices, timed on this machine.

The model is built and compiled first, outside the timing; the time is the whole
forecast: tracing the replicated step over two emulated devices, counting its traffic
and work, and the physical model for every device count. Wall time counts whatever
else the machine runs; CPU time is this process's own.

``--compare`` then traces the same step as ``tf.function(...).get_concrete_function``
does (with its automatic control dependencies and its function definition), beside the
graph-only trace the forecast uses, and prints both CPU times and their ratio.

    python benchmarks/bench_forecast.py [--hardware dgx-a100] [--strategy split] [--compare]
"""

from __future__ import annotations

import argparse
import time

from _quiet import start_tensorflow

tf = start_tensorflow(emulate=2)

import keras  # noqa: E402

import nbreplica  # noqa: E402
from nbreplica.forecasting import trace  # noqa: E402

PER_DEVICE = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="dgx-a100")
    parser.add_argument("--strategy", default="split", choices=("split", "mirrored"))
    parser.add_argument("--compare", action="store_true",
                        help="also time tf.function's tracing of the step beside the forecast's")
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
    if args.compare:
        compare_tracing(model)


def compare_tracing(model: keras.Model) -> None:
    """CPU seconds of tracing the replicated step graph-only (as the forecast does) and
    as ``tf.function(...).get_concrete_function`` does, alternately, twice each."""
    rows = 2 * PER_DEVICE
    specs = (trace._specs(model.inputs, rows), trace._specs(trace._targets(model), rows))
    timed: dict[str, list[float]] = {"graph only": [], "tf.function": []}
    for _ in range(2):
        for name in timed:
            step = nbreplica.replicate(model, gpus=2)
            started = time.process_time()
            if name == "graph only":
                trace._traced_graph(model, step, rows)
            else:
                tf.function(step.train_step, autograph=False).get_concrete_function(specs)
            timed[name].append(time.process_time() - started)
    best = {name: min(values) for name, values in timed.items()}
    print("tracing the step (CPU s, best of 2): " + ", ".join(
        f"{name} {seconds:.1f}" for name, seconds in best.items())
          + f"; graph only / tf.function = {best['graph only'] / best['tf.function']:.2f}")


if __name__ == "__main__":
    main()

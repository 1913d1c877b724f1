"""``%%replicate --check``: run a cell as ``%%replicate`` does, then check that each
model it trained with ``fit`` trains replicated as it trains on one device
(:func:`nbreplica.check_fidelity`), on the data of its first ``fit`` call."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from nbreplica.gpus.available import Accelerator
from nbreplica.notebook.cell_parallel import CellRun, run_parallel
from nbreplica.replicator.fidelity.check import check_fidelity
from nbreplica.replicator.model import ReplicatedModel

#: The ``fit`` arguments a check takes from the cell's call: which rows train, in
#: which batches, weighted how. Epochs, callbacks and validation data are left out.
CHECKED_ARGUMENTS = ("batch_size", "sample_weight", "class_weight", "validation_split")

_ABSENT = object()


@dataclass(frozen=True)
class FitCall:
    """A model's first ``fit`` call in the cell: the model (a replicated model's
    template), its data and the :data:`CHECKED_ARGUMENTS` it was given."""

    model: keras.Model
    x: Any
    y: Any
    arguments: dict[str, Any]


def run_checked(shell: InteractiveShell, body: str, devices: Sequence[Accelerator],
                strategy: str, *, monitor: bool = False,
                shares: str | Sequence[float] | None = None,
                callbacks: Callable[[], list[keras.callbacks.Callback]] | None = None,
                ) -> CellRun:
    """:func:`~nbreplica.notebook.cell_parallel.run_parallel`, then, if the body ran
    without error, one printed verdict per model its ``fit`` calls trained.

    Each model is checked from its weights after the cell, over ``devices``; a model
    that cannot be checked (its data was a generator the cell consumed, say) gets a
    line saying why instead.

    Raises:
        UsageError: fewer than two devices, so nothing to compare one device with.
    """
    if len(devices) < 2:
        raise UsageError(
            "--check compares training on one device with training replicated over the "
            "cell's devices, so it needs at least two. Received: 1 device "
            f"(GPU {devices[0].index})")
    with recorded_fits() as calls:
        run = run_parallel(shell, body, devices, strategy, monitor=monitor, shares=shares,
                           callbacks=callbacks)
    if run.error is None:
        for call in calls:
            print(_verdict(call, [device.index for device in devices], shares))
    return run


@contextlib.contextmanager
def recorded_fits() -> Iterator[list[FitCall]]:
    """Within the context, each model's first ``Model.fit`` call is recorded in the
    list yielded (``keras.Model.fit`` is wrapped, and restored on exit)."""
    calls: list[FitCall] = []
    own = keras.Model.__dict__.get("fit", _ABSENT)
    fit = keras.Model.fit
    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def recording_fit(model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out of the user's traceback
        given = signature.bind(model, *args, **kwargs).arguments
        trained = model.template if isinstance(model, ReplicatedModel) else model
        if all(call.model is not trained for call in calls):
            calls.append(FitCall(trained, given.get("x"), given.get("y"),
                                 {k: given[k] for k in CHECKED_ARGUMENTS if k in given}))
        return fit(model, *args, **kwargs)

    keras.Model.fit = recording_fit
    try:
        yield calls
    finally:
        if own is _ABSENT:
            del keras.Model.fit
        else:
            keras.Model.fit = own


def _verdict(call: FitCall, gpus: list[int], shares: str | Sequence[float] | None) -> str:
    try:
        report = check_fidelity(call.model, call.x, call.y, gpus=gpus, shares=shares,
                                **call.arguments)
    except (TypeError, ValueError) as error:
        return f"Model {call.model.name!r} was not checked: {error}"
    return f"Model {call.model.name!r} {report}"

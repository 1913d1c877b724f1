"""``%%replicate --forecast HARDWARE``: after the cell, the forecast of how the model it
trained would scale on a machine of the catalogue (:func:`nbreplica.forecast`).

The model is the first that a ``fit`` call in the cell trained on data whose batch size
is known (arrays or a batched dataset), forecast at that batch as the cell trains it:
the global batch, split over the GPUs (strong scaling), with the cell's strategy, on
the machine's GPU counts 1, 2, 4, ... up to all of them.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

from nbreplica.bench.forecast_text import forecast_lines
from nbreplica.forecasting.api import forecast
from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.report import Forecast
from nbreplica.notebook.cell_parallel import CellRun


@dataclass(frozen=True)
class ForecastView:
    """A forecast as a cell shows it: its text (explanation and step parts), and in a
    notebook its figure under the text."""

    forecast: Forecast

    def __repr__(self) -> str:
        return "\n".join(forecast_lines(self.forecast))

    def _repr_html_(self) -> str:
        import matplotlib.pyplot as plt

        figure = self.forecast.plot()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)  # shown here, not again by pyplot's inline backend
        image = base64.b64encode(buffer.getvalue()).decode()
        return (f"<div class='nbreplica-forecast'><pre>{html.escape(repr(self))}</pre>"
                f"<img alt='{html.escape(self.forecast.label)}' "
                f"src='data:image/png;base64,{image}'></div>")


def forecast_of_cell(run: CellRun, hardware: Hardware, strategy: str) -> ForecastView | str:
    """:func:`cell_forecast` to show; or, when there is nothing to forecast or the
    model cannot be forecast, a line that says why."""
    try:
        return ForecastView(cell_forecast(run, hardware, strategy))
    except (TypeError, ValueError) as error:
        return str(error)


def cell_forecast(run: CellRun, hardware: Hardware, strategy: str) -> Forecast:
    """The forecast on ``hardware`` of the model the cell's first counted ``fit``
    trained, with ``strategy`` (``"split"`` or ``"mirrored"``).

    Raises:
        ValueError, TypeError: the cell made no such ``fit`` call, or the model cannot
            be forecast (the message says why).
    """
    fit = next((record for record in run.fits if record.layout is not None), None)
    if fit is None:
        raise ValueError(
            "Nothing to forecast: --forecast forecasts the model a fit call in the cell "
            "trains on arrays or a batched tf.data.Dataset, and the cell made no such "
            f"call. Received: {len(run.fits)} fit call(s), none with a known batch size")
    batch = fit.layout.batch_size
    counts = [n for n in _doublings(hardware.gpus) if n <= batch]
    try:
        return forecast(fit.model, batch, devices=counts, hardware=hardware,
                        strategy=strategy, scaling="strong")
    except (TypeError, ValueError) as error:
        raise type(error)(f"Model {fit.model.name!r} was not forecast: {error}") from None


def _doublings(gpus: int) -> list[int]:
    """1, 2, 4, ... below ``gpus``, and ``gpus``."""
    counts = [1]
    while counts[-1] * 2 < gpus:
        counts.append(counts[-1] * 2)
    return sorted({*counts, gpus})

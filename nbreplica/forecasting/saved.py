"""A forecast as JSON text and back, so that a results file keeps a sweep's forecast.

The text holds everything :class:`~nbreplica.forecasting.report.Forecast` shows: its
frame and links (their columns, dtypes and values, exactly: JSON numbers round-trip
a float), the machine (every field of its :class:`~nbreplica.forecasting.hardware.Hardware`, so a
machine not in the catalogue comes back too), the settings, the recommendations and
the assumptions. Nothing is traced again on loading.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from nbreplica.forecasting.hardware import Hardware
from nbreplica.forecasting.report import Forecast

_FRAMES = ("frame", "links")


def forecast_to_json(forecast: Forecast) -> str:
    """``forecast`` as JSON text (see :func:`forecast_from_json`)."""
    fields = {field.name: getattr(forecast, field.name)
              for field in dataclasses.fields(Forecast)}
    fields["hardware"] = dataclasses.asdict(forecast.hardware)
    for name in _FRAMES:
        frame = fields[name]
        fields[name] = {"columns": list(frame.columns), "data": frame.to_dict(orient="split")["data"],
                        "dtypes": [str(dtype) for dtype in frame.dtypes]}
    return json.dumps(fields)


def forecast_from_json(text: str) -> Forecast:
    """The forecast :func:`forecast_to_json` wrote.

    Raises:
        ValueError: ``text`` is not such a forecast (the message says why).
    """
    try:
        fields = json.loads(text)
        fields["hardware"] = Hardware(**fields["hardware"])
        for name in _FRAMES:
            stored = fields[name]
            fields[name] = pd.DataFrame(stored["data"], columns=stored["columns"]).astype(
                dict(zip(stored["columns"], stored["dtypes"])))
        return Forecast(**fields)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"The stored forecast cannot be read: {type(exc).__name__}: {exc}. "
                         f"Received: text={text[:80]!r}") from exc

import pytest

from nbreplica.gpus import emulation


@pytest.fixture(autouse=True)
def no_emulation(monkeypatch):
    """Device-layer tests see only the NVML devices they script."""
    monkeypatch.setattr(emulation, "_emulated_count", 0)


class ManualClock:
    """A driver clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return ManualClock()

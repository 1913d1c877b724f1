"""The physical model's all-reduce under ``strategy="mirrored"``: dense gradients round a
ring, sparse ones (an embedding's rows) through the first GPU."""

from __future__ import annotations

import pytest

from nbreplica.forecasting.catalogue import CATALOGUE
from nbreplica.forecasting.flops import Work
from nbreplica.forecasting.profile import StepProfile
from nbreplica.forecasting.step_model import Setup, forecast_step

GRADIENTS = 10**8  # bytes per GPU


def allreduce_seconds(devices: int, hardware: str, **gradients: int) -> float:
    nothing = Work()
    profile = StepProfile(1, nothing, nothing, nothing, **gradients)
    return forecast_step(profile, Setup(CATALOGUE[hardware], "mirrored"), devices
                         ).parts["allreduce"]


@pytest.mark.parametrize("hardware", ["8xL4-pcie4", "dgx-a100"])
def test_a_ring_sends_each_gpu_two_n_minus_one_over_n_of_the_dense_gradients(hardware):
    two, eight = (allreduce_seconds(n, hardware, gradient_bytes=GRADIENTS) for n in (2, 8))
    assert eight / two == pytest.approx((2 * 7 / 8) / (2 * 1 / 2), rel=1e-3)


def test_sparse_gradients_go_to_the_first_gpu_and_every_gpus_rows_come_back():
    # Into the first GPU: (n - 1) GPUs' rows; out of it, to each of n - 1 GPUs: n GPUs'
    # rows. On PCIe both directions of its link run at one rate.
    two, eight = (allreduce_seconds(n, "8xL4-pcie4", sparse_gradient_bytes=GRADIENTS)
                  for n in (2, 8))
    assert eight / two == pytest.approx((7 + 7 * 8) / (1 + 1 * 2), rel=1e-3)


def test_dense_and_sparse_gradients_add_up():
    both = allreduce_seconds(4, "dgx-a100", gradient_bytes=GRADIENTS,
                             sparse_gradient_bytes=GRADIENTS)
    assert both == pytest.approx(
        allreduce_seconds(4, "dgx-a100", gradient_bytes=GRADIENTS)
        + allreduce_seconds(4, "dgx-a100", sparse_gradient_bytes=GRADIENTS))

"""What multi-worker training must equal: the same training under MirroredStrategy
over 2 logical CPUs in the test process."""

import pytest
from cluster_jobs import fit, make_model

import nbreplica
from nbreplica.strategy.placements import mirrored_strategy


@pytest.fixture(scope="session")
def reference():
    """The losses and final weights of ``cluster_jobs``' training on 2 devices."""
    with mirrored_strategy(nbreplica.list_devices()[:2]).scope():
        model = make_model()
    return fit(model), [w.numpy() for w in model.weights]

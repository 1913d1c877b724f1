"""The IPython shell the magics are tested in, and widgets without a kernel."""

import pytest
from IPython.testing import globalipapp
from ipywidgets.widgets.tests.utils import setup_test_comm, teardown_test_comm

import nbreplica
from nbreplica.gpus import emulation


@pytest.fixture(scope="module")
def shell():
    """The test IPython shell with the extension loaded, formatting displays in every
    format like a notebook kernel does (a terminal computes plain text only)."""
    ip = globalipapp.get_ipython()  # the module attribute: the first call rebinds it
    terminal_types = ip.display_formatter.active_types
    ip.display_formatter.active_types = list(ip.display_formatter.format_types)
    ip.run_line_magic("load_ext", "nbreplica")
    yield ip
    ip.run_line_magic("unload_ext", "nbreplica")
    ip.display_formatter.active_types = terminal_types


@pytest.fixture
def widgets_without_a_kernel(monkeypatch):
    """Widgets on ipywidgets' dummy comm (no browser, no kernel), on a machine with no
    emulated GPUs and no GPU chosen, as before the test."""
    setup_test_comm()
    monkeypatch.setattr(emulation, "_emulated_count", 0)
    yield
    nbreplica.use_devices(None)
    teardown_test_comm()

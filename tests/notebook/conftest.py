"""The IPython shell the magics are tested in."""

import pytest
from IPython.testing import globalipapp


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

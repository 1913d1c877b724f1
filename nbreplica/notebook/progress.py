"""A sweep's progress bar in a notebook: an ipywidgets bar with a status line."""

from __future__ import annotations

import sys

from nbreplica.bench.progress import status_line

_BAR_STYLES = {"completed": "success", "interrupted": "warning", "failed": "danger"}


def in_notebook_kernel() -> bool:
    """Whether this process is a Jupyter kernel (where widgets can be shown)."""
    if "IPython" not in sys.modules:  # a kernel has always imported it already
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class WidgetProgress:
    """A progress bar and a status line (current point, time left) in the output."""

    def __init__(self) -> None:
        import ipywidgets

        self._total = 0
        self.bar = ipywidgets.IntProgress(value=0, min=0, max=1, description="Sweep")
        self.label = ipywidgets.Label()
        self.widget = ipywidgets.HBox([self.bar, self.label])

    def start(self, total: int, title: str) -> None:
        from IPython.display import display

        self._total = total
        with self.bar.hold_sync():
            self.bar.max = max(total, 1)
            self.bar.value = 0
            self.bar.bar_style = "info"
        self.label.value = f"{title}: {total} points"
        display(self.widget)

    def update(self, done: int, current: str, seconds_left: float | None) -> None:
        self.bar.value = done
        self.label.value = status_line(done, self._total, current, seconds_left)

    def finish(self, message: str, outcome: str) -> None:
        if outcome == "completed":
            self.bar.value = self.bar.max
        self.bar.bar_style = _BAR_STYLES[outcome]
        self.label.value = message

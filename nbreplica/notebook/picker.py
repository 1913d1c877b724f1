"""A live GPU picker for notebooks: :class:`GpuPicker`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import ipywidgets as widgets
import traitlets

from nbreplica.gpus import chosen
from nbreplica._checks import is_number
from nbreplica.devices import DeviceStats, free_gpus, nvml_status, snapshot
from nbreplica.devices.console import (
    NOT_AVAILABLE,
    memory_text,
    power_text,
    render,
    share_text,
    temperature_text,
)
from nbreplica.devices.shares import shares_by_index
from nbreplica.devices.periodic import Periodic
from nbreplica.devices.records import GIB

# (header, width) of each column; the header row and every device row share them.
_COLUMNS = (
    ("GPU", "235px"),
    ("memory", "100px"),
    ("", "118px"),
    ("utilization", "100px"),
    ("", "42px"),
    ("temp · power", "130px"),
    ("processes", "180px"),
    ("", "70px"),
)


def _sized(widget: widgets.Widget, column: int) -> widgets.Widget:
    widget.layout = widgets.Layout(width=_COLUMNS[column][1])
    return widget


def _column_headers() -> widgets.HBox:
    return widgets.HBox([
        _sized(widgets.HTML(f"<b>{title}</b>"), column)
        for column, (title, _) in enumerate(_COLUMNS)
    ])


class _Row:
    """The widgets showing one device: checkbox, bars and text."""

    def __init__(self, device: DeviceStats) -> None:
        self.index = device.index
        self.checkbox = _sized(widgets.Checkbox(
            value=False, indent=False,
            description=f"{device.index}: {device.name or 'unknown GPU'}",
        ), 0)
        self.memory_bar = _sized(widgets.FloatProgress(min=0, max=100), 1)
        self.memory_text = _sized(widgets.Label(), 2)
        self.utilization_bar = _sized(widgets.FloatProgress(min=0, max=100), 3)
        self.utilization_text = _sized(widgets.Label(), 4)
        self.sensors_text = _sized(widgets.Label(), 5)
        self.processes_text = _sized(widgets.Label(), 6)
        self.tag = _sized(widgets.HTML(), 7)
        self.live = [self.memory_bar, self.memory_text, self.utilization_bar,
                     self.utilization_text, self.sensors_text, self.processes_text, self.tag]
        self.box = widgets.HBox([self.checkbox, *self.live])

    def show(self, device: DeviceStats | None) -> None:
        """Show ``device``'s values (``None``: it is no longer reported)."""
        if device is None:
            device = DeviceStats(self.index, None, lost=True)
        memory = _fraction(device.memory_used, device.memory_total)
        self.memory_bar.value = 100 * (memory or 0.0)
        self.memory_bar.bar_style = _load_style(memory)
        self.memory_text.value = memory_text(device)
        utilization = device.utilization_gpu
        self.utilization_bar.value = utilization or 0
        self.utilization_bar.bar_style = _load_style(
            None if utilization is None else utilization / 100)
        self.utilization_text.value = NOT_AVAILABLE if utilization is None else f"{utilization} %"
        self.sensors_text.value = _sensors(device)
        self.processes_text.value = _processes(device)
        self.tag.value = _tag(device)
        self.checkbox.disabled = device.lost


class GpuPicker(widgets.VBox):
    """One row per GPU with live memory and utilization bars; tick the ones to use.

    Rows show the index and name, memory used / total, GPU utilization, temperature and
    power, and which other processes hold the device; emulated and simulated devices
    are labelled. Values refresh every ``refresh_interval`` seconds from a background
    thread until :meth:`close` (or the kernel's exit).

    The ticked indices are :attr:`selected` (a trait: ``picker.observe(fn,
    names="selected")``), and every change is written through
    :func:`nbreplica.use_devices`, so ``replicate(model)`` uses them (and, before
    TensorFlow starts, TensorFlow sees only them); with nothing ticked it uses every
    device. A line under the rows says which GPUs this kernel holds (its process in
    NVML's lists, with its memory) and, once TensorFlow has started, which GPUs it
    keeps holding and how to release them. The picker also follows the selection made
    elsewhere (``use_devices``, another picker, a running ``%%replicate`` cell); a
    selection naming devices it does not list ticks nothing.

    Args:
        refresh_interval: seconds between refreshes.
        source: returns the devices to show; defaults to :func:`nbreplica.snapshot`.
    """

    selected = traitlets.List(traitlets.Int(), help="The ticked device indices, sorted.")

    # Class defaults keep close() safe on a picker whose __init__ raised
    # (ipywidgets calls close() from __del__).
    _periodic: Periodic | None = None
    _parts: tuple[widgets.Widget, ...] = ()
    _unsubscribe: Callable[[], None] | None = None

    def __init__(
        self,
        *,
        refresh_interval: float = 1.0,
        source: Callable[[], Sequence[DeviceStats]] = snapshot,
        **kwargs: Any,
    ) -> None:
        if not is_number(refresh_interval) or not refresh_interval > 0:
            raise ValueError(
                "refresh_interval must be a number of seconds > 0. "
                f"Received: refresh_interval={refresh_interval!r}"
            )
        self._source = source
        self._refresh_lock = threading.Lock()
        self._ticking = False
        self._following = False
        devices = list(source())
        self._devices = {device.index: device for device in devices}
        self._rows = {device.index: _Row(device) for device in devices}
        self._header = widgets.HTML(_header(devices))
        self._summary = widgets.Label()
        self._kernel = widgets.Label(layout=widgets.Layout(max_width="1100px"))
        free_button = widgets.Button(description="Select free",
                                     tooltip="Tick the GPUs with free memory and low utilization")
        clear_button = widgets.Button(description="Clear")
        free_button.on_click(lambda _: self.select_free())
        clear_button.on_click(lambda _: setattr(self, "selected", []))
        self._toolbar = widgets.HBox([free_button, clear_button, self._summary])
        columns = _column_headers()
        children = [self._header]
        if self._rows:
            children += [columns, *(row.box for row in self._rows.values()), self._kernel,
                         self._toolbar]
        super().__init__(children=children, **kwargs)
        for row in self._rows.values():
            row.show(self._devices[row.index])
            row.checkbox.observe(self._on_checkbox, names="value")
        self._parts = (
            *(widget for row in self._rows.values()
              for widget in (row.checkbox, *row.live, row.box)),
            *columns.children, columns, free_button, clear_button, self._summary,
            self._toolbar, self._kernel, self._header,
        )
        self._unsubscribe = chosen.observe_selection(self._follow)
        self._follow(chosen.selected_devices())
        self._periodic = Periodic(self.refresh, float(refresh_interval), "nbreplica-gpu-picker")
        if self._rows:
            self._periodic.start(immediately=False)  # the rows show a fresh read already

    @property
    def refreshing(self) -> bool:
        """Whether the background refresh is running."""
        return self._periodic is not None and self._periodic.running

    def refresh(self) -> None:
        """Read the devices now and update every row; the changes go out together.

        Safe to call while the background refresh runs: refreshes take turns, so the
        newest read is the one shown.
        """
        # Overlapping refreshes would let an older read land last, and would split
        # each other's hold_sync (a per-widget flag, not per-thread) into several
        # messages per widget.
        with self._refresh_lock:
            devices = {device.index: device for device in self._source()}
            with ExitStack() as stack:
                for row in self._rows.values():
                    for widget in row.live:
                        stack.enter_context(widget.hold_sync())
                for row in self._rows.values():
                    row.show(devices.get(row.index))
            self._devices = devices
            self._show_summary(chosen.selected_devices())
            self._show_kernel()

    def select_free(self, min_free_gib: float = 1.0, max_utilization: float = 10.0) -> list[int]:
        """Tick exactly the GPUs :func:`nbreplica.free_gpus` finds free in the latest
        refresh, and return their indices."""
        chosen = free_gpus(min_free_gib, max_utilization,
                           devices=[self._devices[i] for i in self._rows if i in self._devices])
        self.selected = chosen
        return chosen

    def as_text(self) -> str:
        """The picker as plain text, as of the latest refresh: the GPUs as
        ``nbreplica devices`` lists them, what this kernel holds, what is ticked."""
        devices = list(self._devices.values())
        title = f"GPUs · {nvml_status()}" if devices else f"No GPUs found: {nvml_status()}"
        parts = (render(devices, title), self._kernel.value, self._summary.value)
        return "\n".join(part for part in parts if part)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # A saved notebook keeps this text beside the widget, and a viewer without
        # widgets shows only the text: ipywidgets' own is "GpuPicker(children=(...".
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.as_text()
        return bundle

    def close(self) -> None:
        """Stop refreshing and following the selection, and close every widget of the
        picker."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._periodic is not None:
            self._periodic.stop()
        for widget in self._parts:
            widget.close()
        super().close()

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> list[int]:
        chosen = list(proposal["value"])
        unknown = [index for index in chosen if index not in self._rows]
        if unknown or len(set(chosen)) != len(chosen):
            raise traitlets.TraitError(
                f"selected must list distinct indices of the picker's devices "
                f"{sorted(self._rows)}. Received: selected={chosen!r}"
            )
        return sorted(chosen)

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._ticking = True  # the boxes follow `selected`; they must not feed back
        try:
            for row in self._rows.values():
                row.checkbox.value = row.index in change["new"]
        finally:
            self._ticking = False
        if not self._following:
            # A change of `selected` always changes the selection, which comes back
            # through _follow (a no-op for `selected`) and updates the summary.
            # The note on what this kernel holds shows in the picker, not as a warning.
            chosen.select(change["new"] or None)

    def _on_checkbox(self, change: dict[str, Any]) -> None:
        if not self._ticking:
            self.selected = [index for index, row in self._rows.items() if row.checkbox.value]

    def _follow(self, current: tuple[int, ...] | None) -> None:
        """Show ``current``, the process-wide selection, without writing it back."""
        self._following = True
        try:
            self.selected = list(current) if current and set(current) <= set(self._rows) else []
        finally:
            self._following = False
        self._show_summary(current)
        self._show_kernel()

    def _show_summary(self, current: tuple[int, ...] | None) -> None:
        """What ``replicate()`` will use, with each ticked GPU's share of a batch."""
        if not current:
            self._summary.value = "Nothing ticked: replicate() uses every device."
            return
        ticked = [self._devices[i] for i in current if i in self._devices]
        self._summary.value = " · ".join([
            "replicate() will use GPUs " + ", ".join(map(str, current)),
            *_shares_parts(ticked)])

    def _show_kernel(self) -> None:
        """Which GPUs this kernel holds, and what the selection could not change."""
        self._kernel.value = " ".join(
            part for part in (_held(list(self._devices.values())), chosen.visibility_note())
            if part
        )


def _header(devices: Sequence[DeviceStats]) -> str:
    status = nvml_status()
    if not devices:
        return (
            f"<b>No GPUs found</b>: {status}.<br>Without GPUs, "
            "<code>nbreplica.emulate_gpus(n)</code> (or <code>NBREPLICA_EMULATE_GPUS=n</code> "
            "before importing nbreplica) gives emulated ones to try things with."
        )
    if all(device.emulated for device in devices):
        return (
            f"<b>{len(devices)} emulated GPUs</b> (TensorFlow logical CPU devices: no "
            f"memory, utilization or power to show). NVML: {status}."
        )
    return f"<b>GPUs</b> · {status}"


def _fraction(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


def _load_style(fraction: float | None) -> str:
    if fraction is None:
        return ""
    return "success" if fraction < 0.5 else "warning" if fraction < 0.85 else "danger"


def _sensors(device: DeviceStats) -> str:
    return f"{temperature_text(device)} · {power_text(device)}"


def _processes(device: DeviceStats) -> str:
    """This kernel's memory on the device, if it holds some, then the other processes:
    the first one by name and memory, and how many more."""
    others = device.other_processes()
    if others is None:
        return NOT_AVAILABLE
    own = device.own_process()
    parts = [] if own is None else [f"this kernel{_gib(own.gpu_memory)}"]
    if others:
        first = others[0]
        more = f" +{len(others) - 1} more" if len(others) > 1 else ""
        parts.append(f"{(first.name or f'pid {first.pid}').rsplit('/', 1)[-1]}"
                     f"{_gib(first.gpu_memory)}{more}")
    return " · ".join(parts) or "none"


def _gib(memory: int | None) -> str:
    return "" if memory is None else f" {memory / GIB:.1f} GiB"


def _held(devices: Sequence[DeviceStats]) -> str:
    """Which GPUs this kernel holds (its PID in NVML's process lists), and how much."""
    held = [f"GPU {device.index}" + ("" if own.gpu_memory is None else
                                     f" ({own.gpu_memory / GIB:.1f} GiB)")
            for device in devices if (own := device.own_process()) is not None]
    return f"This kernel holds {', '.join(held)}." if held else ""


def _shares_parts(ticked: Sequence[DeviceStats]) -> list[str]:
    """Each ticked GPU's share of a batch, as ``replicate(shares="auto")`` would split
    it without timing the model (NVML's description) and as ``shares="memory"``
    would, where NVML tells (at least two GPUs: one takes the whole batch)."""
    parts = []
    for mode, how in (("auto", 'shares="auto" (NVML)'), ("memory", 'shares="memory"')):
        shares = shares_by_index(ticked, mode)
        if len(ticked) > 1 and len(shares) == len(ticked):
            parts.append(f"{how}: " + ", ".join(
                f"GPU {index} {share_text(share)}" for index, share in shares.items()))
    return parts


def _tag(device: DeviceStats) -> str:
    if device.lost:
        return "<b style='color:#c62828'>lost</b>"
    if device.emulated:
        return "<i>emulated</i>"
    if device.simulated:
        return "<i>simulated</i>"
    return ""

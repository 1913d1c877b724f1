"""A stand-in for the few ``tf.config`` calls of nbreplica's GPU visibility, behaving
as TensorFlow's own on a machine with NVIDIA GPUs (no TensorFlow imported)."""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

PhysicalDevice = namedtuple("PhysicalDevice", "name device_type")
LogicalDevice = namedtuple("LogicalDevice", "name device_type")


class FakeTfConfig:
    """``count`` physical GPUs, all visible, memory growth unset, runtime not started.

    As in TensorFlow: changing visibility or memory growth after the runtime started
    raises RuntimeError (setting what is already set does not), the visible GPUs keep
    the physical order, and starting with visible GPUs that differ in memory growth
    raises ValueError. ``list_logical_devices`` starts the runtime.
    """

    def __init__(self, count: int, name: str = "NVIDIA H100 80GB HBM3") -> None:
        self.gpus = [PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(count)]
        self.visible = list(self.gpus)
        self.growth: dict[PhysicalDevice, bool] = {}
        self.started = False
        self.experimental = SimpleNamespace(
            set_memory_growth=self._set_memory_growth,
            get_device_details=lambda device: {"device_name": name},
        )

    def list_physical_devices(self, device_type: str | None = None) -> list[PhysicalDevice]:
        return list(self.gpus) if device_type == "GPU" else []

    def get_visible_devices(self, device_type: str | None = None) -> list[PhysicalDevice]:
        return list(self.visible) if device_type == "GPU" else []

    def set_visible_devices(self, devices: list[PhysicalDevice], device_type: str) -> None:
        assert device_type == "GPU"
        if set(devices) == set(self.visible):
            return
        if self.started:
            raise RuntimeError("Visible devices cannot be modified after being initialized")
        self.visible = [device for device in self.gpus if device in devices]

    def _set_memory_growth(self, device: PhysicalDevice, enable: bool) -> None:
        if self.growth.get(device, False) == enable:
            return
        if self.started:
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        self.growth[device] = enable

    def list_logical_devices(self, device_type: str | None = None) -> list[LogicalDevice]:
        if not self.started and len({self.growth.get(d, False) for d in self.visible}) > 1:
            raise ValueError("Memory growth cannot differ between GPU devices")
        self.started = True
        if device_type != "GPU":
            return []
        return [LogicalDevice(f"/device:GPU:{j}", "GPU") for j in range(len(self.visible))]

    def visible_names(self) -> list[str]:
        """The visible GPUs' physical names, in TensorFlow's order."""
        return [device.name for device in self.visible]

"""GpuPicker's widget state, checked through ipywidgets' dummy comm (no browser)."""

import threading
import time

import ipywidgets
import pytest
import traitlets
from fake_tf_config import FakeTfConfig

import nbreplica
from nbreplica.gpus import chosen, emulation, visible
from nbreplica.devices import DeviceStats
from nbreplica.testing import GIB, FakeGpu, FakeProcess, fake_nvml, plausible_gpus, this_process
from nbreplica.testing.plausible import mixed_gpus


pytestmark = pytest.mark.usefixtures("widgets_without_a_kernel")


@pytest.fixture
def make_picker():
    pickers = []

    def make(**kwargs):
        pickers.append(nbreplica.GpuPicker(refresh_interval=kwargs.pop("refresh_interval", 60),
                                           **kwargs))
        return pickers[-1]

    yield make
    for picker in pickers:
        picker.close()


@pytest.fixture
def eight():
    with fake_nvml(*plausible_gpus(8)) as driver:
        yield driver


def rows(picker):
    return [child for child in picker.children if isinstance(child, ipywidgets.HBox)
            and isinstance(child.children[0], ipywidgets.Checkbox)]


def cells(picker, index):
    checkbox, memory_bar, memory_text, util_bar, util_text, sensors, processes, tag = (
        rows(picker)[index].children)
    return dict(checkbox=checkbox, memory_bar=memory_bar, memory_text=memory_text,
                util_bar=util_bar, util_text=util_text, sensors=sensors,
                processes=processes, tag=tag)


def toolbar(picker):
    return picker.children[-1].children


def kernel_line(picker):
    return picker.children[-2].value


def test_one_row_per_gpu_with_its_values(eight, make_picker):
    picker = make_picker()
    devices = {d.index: d for d in nbreplica.snapshot()}
    assert len(rows(picker)) == 8
    header = picker.children[0].value
    assert "NVML ready: 8 GPUs" in header and "simulated" in header
    busy = cells(picker, 1)
    assert busy["checkbox"].description == "1: NVIDIA A100-SXM4-40GB"
    assert busy["memory_bar"].value == pytest.approx(
        100 * devices[1].memory_used / devices[1].memory_total, abs=2)
    assert busy["memory_text"].value.endswith("/ 40.0 GiB")
    assert busy["util_bar"].value > 70 and busy["util_text"].value.endswith(" %")
    assert busy["util_bar"].bar_style == "danger"
    assert "°C" in busy["sensors"].value and "/400 W" in busy["sensors"].value
    assert busy["processes"].value == "python3 28.0 GiB"
    assert "simulated" in busy["tag"].value
    idle = cells(picker, 0)
    assert idle["processes"].value == "none"
    assert idle["util_bar"].bar_style == "success"


def test_the_gpus_this_kernel_holds_are_marked_with_their_memory(make_picker):
    gpus = [FakeGpu(processes=[this_process(int(1.5 * GIB)), FakeProcess(7, "/bin/x", GIB)]),
            FakeGpu(), FakeGpu(processes=[this_process(None)])]
    with fake_nvml(*gpus):
        picker = make_picker()
        assert cells(picker, 0)["processes"].value == "this kernel 1.5 GiB · x 1.0 GiB"
        assert cells(picker, 1)["processes"].value == "none"
        assert cells(picker, 2)["processes"].value == "this kernel"
        assert kernel_line(picker) == "This kernel holds GPU 0 (1.5 GiB), GPU 2."


def test_ticking_after_tensorflow_started_says_what_the_kernel_holds(eight, make_picker,
                                                                     monkeypatch, recwarn):
    config = FakeTfConfig(8)
    monkeypatch.setattr(visible, "loaded_config", lambda: config)
    config.list_logical_devices("GPU")  # TensorFlow started with every GPU
    picker = make_picker()
    assert kernel_line(picker) == ""
    cells(picker, 2)["checkbox"].value = True
    assert nbreplica.selected_devices() == (2,)
    assert "holds GPUs 0-7" in kernel_line(picker) and "restart the kernel" in kernel_line(picker)
    # Said in the picker, not as a warning (older ipywidgets warn of deprecations).
    assert [w for w in recwarn.list if issubclass(w.category, UserWarning)] == []
    cells(picker, 2)["checkbox"].value = False
    assert kernel_line(picker) == ""


def test_ticking_before_tensorflow_started_limits_what_it_sees(eight, make_picker, monkeypatch):
    config = FakeTfConfig(8)
    monkeypatch.setattr(visible, "loaded_config", lambda: config)
    picker = make_picker()
    picker.selected = [4, 1]
    assert config.visible_names() == ["/physical_device:GPU:1", "/physical_device:GPU:4"]
    assert kernel_line(picker) == ""


def test_ticking_a_box_selects_and_writes_the_default_devices(eight, make_picker):
    picker = make_picker()
    changes = []
    picker.observe(lambda change: changes.append(change["new"]), names="selected")
    cells(picker, 5)["checkbox"].value = True
    cells(picker, 2)["checkbox"].value = True
    assert picker.selected == [2, 5]
    assert changes == [[5], [2, 5]]
    assert nbreplica.selected_devices() == (2, 5)
    assert toolbar(picker)[2].value == (
        'replicate() will use GPUs 2, 5 · shares="auto" (NVML): GPU 2 50%, GPU 5 50% · '
        'shares="memory": GPU 2 50%, GPU 5 50%')
    cells(picker, 2)["checkbox"].value = False
    cells(picker, 5)["checkbox"].value = False
    assert picker.selected == [] and nbreplica.selected_devices() is None
    assert "every device" in toolbar(picker)[2].value


def test_the_ticked_gpus_of_a_mixed_machine_show_their_shares(make_picker):
    with fake_nvml(*mixed_gpus()):
        picker = make_picker()
        picker.selected = [0, 2, 3]
        # Speed: 6912 x 1410 against 2560 x 1590 per T4; free memory 72, 12 and 9 GiB.
        assert toolbar(picker)[2].value == (
            'replicate() will use GPUs 0, 2, 3 · shares="auto" (NVML): GPU 0 54%, GPU 2 23%, '
            'GPU 3 23% · shares="memory": GPU 0 77%, GPU 2 13%, GPU 3 10%')
        picker.selected = [1]  # one GPU takes the whole batch: no shares to show
        assert toolbar(picker)[2].value == "replicate() will use GPUs 1"


def test_setting_selected_ticks_the_boxes(eight, make_picker):
    picker = make_picker()
    picker.selected = [7, 3]
    assert picker.selected == [3, 7]
    assert [cells(picker, i)["checkbox"].value for i in range(8)] == [
        i in (3, 7) for i in range(8)]
    assert nbreplica.selected_devices() == (3, 7)
    with pytest.raises(traitlets.TraitError,
                       match=r"distinct indices of the picker's devices \[0, 1, 2, 3, 4, 5, 6, 7\]"
                             r"\. Received: selected=\[8\]"):
        picker.selected = [8]
    with pytest.raises(traitlets.TraitError, match=r"Received: selected=\[1, 1\]"):
        picker.selected = [1, 1]
    assert picker.selected == [3, 7]


def test_select_free_ticks_the_idle_gpus(eight, make_picker):
    picker = make_picker()
    assert picker.select_free(min_free_gib=4, max_utilization=20) == [0, 2, 3, 5, 6]
    assert nbreplica.selected_devices() == (0, 2, 3, 5, 6)
    toolbar(picker)[1].click()  # "Clear"
    assert picker.selected == []
    toolbar(picker)[0].click()  # "Select free"
    assert picker.selected == [0, 2, 3, 5, 6]


def test_an_existing_selection_is_shown(eight, make_picker):
    nbreplica.use_devices([1, 6])
    picker = make_picker()
    assert picker.selected == [1, 6]
    assert cells(picker, 6)["checkbox"].value


def test_the_boxes_follow_use_devices(eight, make_picker):
    picker = make_picker()
    changes = []
    picker.observe(lambda change: changes.append(change["new"]), names="selected")
    nbreplica.use_devices([4, 1])
    assert picker.selected == [1, 4]
    assert [cells(picker, i)["checkbox"].value for i in range(8)] == [
        i in (1, 4) for i in range(8)]
    assert toolbar(picker)[2].value.startswith("replicate() will use GPUs 1, 4 · ")
    # What %%replicate does around a cell: its devices, then the selection from before.
    nbreplica.use_devices([0, 2, 3])
    nbreplica.use_devices([1, 4])
    nbreplica.use_devices(None)
    assert changes == [[1, 4], [0, 2, 3], [1, 4], []]
    assert not any(cells(picker, i)["checkbox"].value for i in range(8))
    assert "every device" in toolbar(picker)[2].value


def test_a_click_changes_the_selection_once(eight, make_picker):
    picker = make_picker()
    seen = []
    unsubscribe = chosen.observe_selection(seen.append)
    try:
        cells(picker, 3)["checkbox"].value = True
        toolbar(picker)[1].click()  # "Clear"
    finally:
        unsubscribe()
    assert seen == [(3,), None]


def test_two_pickers_stay_in_sync(eight, make_picker):
    first, second = make_picker(), make_picker()
    cells(first, 6)["checkbox"].value = True
    assert second.selected == [6] and cells(second, 6)["checkbox"].value
    assert toolbar(second)[2].value == "replicate() will use GPUs 6"
    second.select_free(min_free_gib=4, max_utilization=20)
    assert first.selected == [0, 2, 3, 5, 6]
    toolbar(first)[1].click()  # "Clear"
    assert second.selected == [] and nbreplica.selected_devices() is None


def test_a_selection_of_devices_the_picker_does_not_list_ticks_nothing(make_picker):
    devices = [DeviceStats(0, "a", memory_used=1, memory_total=2),
               DeviceStats(1, "b", memory_used=1, memory_total=2)]
    picker = make_picker(source=lambda: devices)
    picker.selected = [1]
    nbreplica.use_devices([5, 6])
    assert picker.selected == [] and not cells(picker, 1)["checkbox"].value
    assert nbreplica.selected_devices() == (5, 6)  # not cleared by the picker
    assert toolbar(picker)[2].value == "replicate() will use GPUs 5, 6"


def test_a_closed_picker_no_longer_follows_the_selection(eight, make_picker):
    picker = make_picker()
    nbreplica.use_devices([2])
    picker.close()
    changes = []
    picker.observe(lambda change: changes.append(change["new"]), names="selected")
    nbreplica.use_devices([3, 4])
    assert changes == [] and picker.selected == [2]


def test_a_refresh_sends_each_widgets_changes_as_one_message(make_picker):
    now = [0.0]
    gpu = FakeGpu(memory_total=10 * GIB, memory_used=[1 * GIB, 9 * GIB], utilization_gpu=[5, 95])
    with fake_nvml(gpu, clock=lambda: now[0]):
        picker = make_picker()  # its first background refresh is a minute away
        bar = cells(picker, 0)["memory_bar"]
        assert (bar.value, bar.bar_style) == (10, "success")
        bar.comm.messages.clear()
        now[0] = 1.0
        picker.refresh()
    assert (bar.value, bar.bar_style) == (90, "danger")
    assert cells(picker, 0)["util_text"].value == "95 %"
    updates = [kwargs["data"]["state"] for _, kwargs in bar.comm.messages
               if kwargs["data"]["method"] == "update"]
    assert updates == [{"value": 90.0, "bar_style": "danger"}]


def test_a_refresh_waits_for_the_background_one_so_the_newest_read_is_shown(make_picker):
    background_read = threading.Event()
    release = threading.Event()
    now = [DeviceStats(0, "gpu", memory_used=1 * GIB, memory_total=10 * GIB)]

    def source():
        devices = now
        in_background = threading.current_thread().name == "nbreplica-gpu-picker"
        if in_background and not background_read.is_set():
            background_read.set()
            release.wait(10)  # holds this (soon outdated) read back
        return devices

    picker = make_picker(refresh_interval=0.01, source=source)
    bar = cells(picker, 0)["memory_bar"]
    shown = []
    bar.observe(lambda change: shown.append(change["new"]), names="value")
    assert background_read.wait(10)
    now = [DeviceStats(0, "gpu", memory_used=9 * GIB, memory_total=10 * GIB)]
    threading.Timer(0.05, release.set).start()
    picker.refresh()  # reads only after the background refresh has shown its read
    picker.close()
    assert shown == [90.0]


def test_values_refresh_in_the_background_until_close(eight, make_picker):
    calls = []

    def source():
        calls.append(time.monotonic())
        return nbreplica.snapshot()

    picker = make_picker(refresh_interval=0.02, source=source)
    assert picker.refreshing
    deadline = time.monotonic() + 10
    while len(calls) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    box = cells(picker, 0)["checkbox"]
    picker.close()
    stopped_at = len(calls)
    time.sleep(0.1)
    assert not picker.refreshing and len(calls) == stopped_at
    assert picker.comm is None and box.comm is None


def test_no_gpus_gives_a_message_with_the_reason(make_picker):
    with fake_nvml(init_error="driver_not_loaded"):
        picker = make_picker()
    (message,) = picker.children
    assert "No GPUs found" in message.value and "NVIDIA driver not loaded" in message.value
    assert "emulate_gpus" in message.value
    assert not picker.refreshing


def test_emulated_gpus_are_labelled_and_show_no_invented_values(monkeypatch, make_picker):
    monkeypatch.setattr(emulation, "_emulated_count", 2)
    with fake_nvml(init_error="library_not_found"):
        picker = make_picker()
    assert "2 emulated GPUs" in picker.children[0].value
    row = cells(picker, 1)
    assert "emulated" in row["tag"].value
    assert (row["memory_text"].value, row["util_text"].value) == ("n/a", "n/a")
    assert (row["memory_bar"].value, row["util_bar"].value) == (0, 0)
    assert row["sensors"].value == "n/a · n/a W"
    assert row["processes"].value == "n/a"


def test_a_lost_gpu_cannot_be_ticked(make_picker):
    devices = [DeviceStats(0, "ok", memory_used=1, memory_total=2),
               DeviceStats(1, "gone", lost=True)]
    picker = make_picker(source=lambda: devices)
    assert "lost" in cells(picker, 1)["tag"].value
    assert cells(picker, 1)["checkbox"].disabled and not cells(picker, 0)["checkbox"].disabled
    assert picker.select_free() == [0]


@pytest.mark.parametrize("interval", [0, "1", None])
def test_bad_refresh_interval_is_named(interval):
    with pytest.raises(ValueError, match=rf"Received: refresh_interval={interval!r}"):
        nbreplica.GpuPicker(refresh_interval=interval)

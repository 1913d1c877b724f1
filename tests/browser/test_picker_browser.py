"""The GPU picker in a real JupyterLab, driven through headless Chromium.

The server's environment carries NBREPLICA_FAKE_NVML=8 to the kernel, so the picker
shows eight simulated GPUs. The screenshot goes to $NBREPLICA_SCREENSHOT_DIR (or the
test's tmp dir) as picker.png.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page, sync_playwright

pytestmark = pytest.mark.browser

TOKEN = "nbreplica-browser-test"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
CELLS = [
    "import nbreplica\npicker = nbreplica.GpuPicker()\npicker",
    "print('selected:', nbreplica.selected_devices())",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else {}


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server with its own config, runtime, settings and workspaces."""
    home = tmp_path / "jupyter"
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings",
                                           "workspaces", "ipython")}
    for path in dirs.values():
        path.mkdir(parents=True)
    (dirs["config"] / "labconfig").mkdir()
    (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, root / "picker.ipynb")

    env = {k: v for k, v in os.environ.items() if not k.startswith("NBREPLICA_")}
    env.update(
        NBREPLICA_FAKE_NVML="8",
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                api(base, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.3)
        # A session made up front means the page never asks "Select Kernel".
        api(base, "/api/sessions", "POST", {"path": "picker.ipynb", "type": "notebook",
                                            "name": "picker.ipynb",
                                            "kernel": {"name": "python3"}})
        yield base
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for(page: Page, condition: str, timeout: float, what: str) -> None:
    """Poll a JS condition, accepting any stray dialog on the way."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        dialogs = page.locator(".jp-Dialog .jp-mod-accept")
        if dialogs.count():
            dialogs.first.click()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


KERNEL_IDLE = "document.querySelector('.jp-StatusBar-Widget') !== null && " \
              "document.body.innerText.includes('Idle')"
OUTPUT_TEXT = "Array.from(document.querySelectorAll('.jp-OutputArea-output'))" \
              ".map(e => e.innerText).join('\\n')"


def test_picker_renders_and_selection_reaches_the_kernel(jupyterlab, tmp_path):
    shots = Path(os.environ.get("NBREPLICA_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{jupyterlab}/lab/tree/picker.ipynb?token={TOKEN}")
            wait_for(page, "document.querySelectorAll('.jp-Notebook .jp-Cell').length === 2",
                     60, "the notebook")
            wait_for(page, KERNEL_IDLE, 90, "an idle kernel")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

            boxes = page.locator(".widget-checkbox input[type=checkbox]")
            wait_for(page, "document.querySelectorAll("
                     "'.widget-checkbox input[type=checkbox]').length === 8", 120, "8 rows")
            bars = page.locator(".widget-hprogress .progress-bar")
            assert bars.count() == 16
            widths = [bars.nth(i).get_attribute("style") or "" for i in range(16)]
            assert all("width" in style for style in widths), widths
            assert page.get_by_text("simulated", exact=True).count() == 8
            wait_for(page, f"{OUTPUT_TEXT}.includes('selected: None')", 60, "the first print")

            boxes.nth(2).check()
            boxes.nth(4).check()
            wait_for(page, "document.body.innerText.includes('replicate() will use GPUs 2, 4')",
                     30, "the kernel to see the ticks")
            page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".cm-content").click()
            page.keyboard.press("Control+Enter")
            wait_for(page, f"{OUTPUT_TEXT}.includes('selected: (2, 4)')", 60,
                     "the kernel-side selection")
            time.sleep(1.5)  # let a live refresh land before the picture
            cells = page.locator(".jp-Notebook .jp-Cell")
            top, bottom = cells.first.bounding_box(), cells.last.bounding_box()
            page.screenshot(path=str(shots / "picker.png"), clip={
                "x": top["x"], "y": top["y"] - 8, "width": top["width"] + 8,
                "height": bottom["y"] + bottom["height"] - top["y"] + 16})
        finally:
            browser.close()
    assert (shots / "picker.png").stat().st_size > 10_000

"""The README works as written: its Python blocks run top to bottom, as one script, on
a machine without GPUs and with nothing on stderr; every other block is fenced as what
it is; every local link leads to a file (and heading) that exists, and every name and
path it or a page of docs/ mentions exists in the code; every image it shows is one
that ``docs/make_images.py`` makes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

#: Fences a block may carry. ``python`` blocks are run; ``ipython`` ones are notebook
#: cells (magics), ``bash`` ones are commands, ``text`` ones show output.
FENCES = {"python", "ipython", "bash", "text"}

#: The README's script, with training shrunk to what it is, stays quick on 2 cores.
SCRIPT_TIMEOUT_S = 300

_FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_LOCAL_LINK = re.compile(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]*))?\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_NAME = re.compile(r"\bnbreplica(?:\.[A-Za-z_]\w*)+")
_PATH = re.compile(r"`((?:nbreplica|benchmarks|tests|docs|notebooks|\.ci)/[\w./-]*)`")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text``: (its language, its code), in order."""
    return [(match[1], match[2]) for match in _FENCE.finditer(text)]


def python_blocks(text: str) -> list[str]:
    """The code of every ``python`` block of ``text``, in order."""
    return [code for language, code in fenced_blocks(text) if language == "python"]


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: ``"Choosing GPUs: what it takes"`` ->
    ``"choosing-gpus-what-it-takes"``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of every heading of ``page``."""
    text = _FENCE.sub("", page.read_text())  # a "# comment" in a block is no heading
    return {anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def resolve(dotted: str) -> Any:
    """The object a dotted name such as ``nbreplica.cluster.launch`` names: each part an
    attribute of the one before, or a module under it."""
    parts = dotted.split(".")
    found: Any = importlib.import_module(parts[0])
    for end in range(2, len(parts) + 1):
        try:
            found = getattr(found, parts[end - 1])
        except AttributeError:
            found = importlib.import_module(".".join(parts[:end]))
    return found


def load_image_script() -> ModuleType:
    """``docs/make_images.py`` as a module (importing it makes nothing)."""
    spec = importlib.util.spec_from_file_location("make_images", ROOT / "docs" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fenced_blocks_are_read_as_written():
    text = "a\n```python\nx = 1\n```\nb\n```ipython\n%load_ext nbreplica\n```\n"
    assert fenced_blocks(text) == [("python", "x = 1\n"), ("ipython", "%load_ext nbreplica\n")]
    assert python_blocks(text) == ["x = 1\n"]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_block_names_its_kind(page):
    languages = [language for language, _ in fenced_blocks(page.read_text())]
    assert set(languages) <= FENCES, f"{page.name}: fences {sorted(set(languages) - FENCES)}"


def test_notebook_cells_are_not_fenced_as_python():
    # An IPython magic in a python block would fail the script below.
    for code in python_blocks(README.read_text()):
        assert not re.search(r"^\s*%", code, re.MULTILINE), code


def test_the_readmes_python_runs_without_gpus_and_keeps_stderr_empty(tmp_path):
    script = "\n".join(python_blocks(README.read_text()))
    assert "nbreplica.replicate" in script
    # As on a fresh machine without GPUs: nothing emulated or simulated beforehand,
    # TensorFlow's own logging at its default level, results in a scratch home.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("NBREPLICA_") and name != "TF_CPP_MIN_LOG_LEVEL"}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Emulated GPU 3" in done.stdout
    assert "trains like one device" in done.stdout
    assert (tmp_path / "my_model.keras").is_file()


def test_anchors_are_githubs():
    assert anchor(" Choosing GPUs: what TensorFlow takes") == "choosing-gpus-what-tensorflow-takes"
    assert anchor("Does my model train like one device?") == "does-my-model-train-like-one-device"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_local_links_lead_to_files_and_headings(page):
    missing = []
    for target, heading in _LOCAL_LINK.findall(page.read_text()):
        linked = (page.parent / target) if target else page
        if not linked.exists() or (heading and heading not in anchors(linked)):
            missing.append(f"{target}#{heading}" if heading else target)
    assert missing == [], f"{page.name} links to missing files or headings"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_names_and_paths_mentioned_exist(page):
    text = page.read_text()
    for name in sorted(set(_NAME.findall(text))):
        resolve(name)  # raises for a name the code no longer has
    missing = [path for path in _PATH.findall(text) if not (ROOT / path).exists()]
    assert missing == [], f"{page.name} mentions missing files"


def test_every_image_the_readme_shows_is_made_by_the_image_script():
    shown = {Path(target) for target in _IMAGE.findall(README.read_text())}
    made = {path.relative_to(ROOT) for path in load_image_script().IMAGES}
    assert shown and shown == made
    assert all((ROOT / path).stat().st_size > 10_000 for path in shown)

"""Make every image the README shows again, from the current code.

    python docs/make_images.py            # both images
    python docs/make_images.py report     # one of them: report or picker

- ``docs/report.png``: the speedup figure of the README's first command,
  ``nbreplica sweep --model mlp --devices 1,2,4,8 --emulate 8`` (its default target
  and budget, about 3 minutes), into a scratch results file.
- ``docs/picker.png``: the GPU picker in a real JupyterLab with 8 simulated GPUs, two
  of them ticked, photographed in headless Chromium by
  ``tests/browser/test_picker_browser.py`` (it needs Chromium and the test extras,
  which ``tests/run.sh`` installs).

``tests/test_readme.py`` checks that the images the README shows are these.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
REPORT = DOCS / "report.png"
PICKER = DOCS / "picker.png"

#: Every image this script makes.
IMAGES = (REPORT, PICKER)

#: The README's first command, after its install step.
FIRST_COMMAND = ["sweep", "--model", "mlp", "--devices", "1,2,4,8", "--emulate", "8"]


def clean_environment() -> dict[str, str]:
    """This environment without nbreplica's own settings, as on a fresh machine."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("NBREPLICA_")}


def make_report(scratch: Path) -> None:
    """Run the README's first command into ``scratch``; keep its speedup figure."""
    out = scratch / "sweep-report"
    subprocess.run([sys.executable, "-m", "nbreplica", *FIRST_COMMAND, "--out", str(out),
                    "--results", str(scratch / "results.sqlite")],
                   env=clean_environment(), check=True)
    shutil.copyfile(out / "scaling.png", REPORT)


def make_picker(scratch: Path) -> None:
    """Run the browser test of the picker; keep its screenshot."""
    environment = {**clean_environment(), "NBREPLICA_SCREENSHOT_DIR": str(scratch)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/browser/test_picker_browser.py"],
                   cwd=ROOT, env=environment, check=True)
    shutil.copyfile(scratch / "picker.png", PICKER)


MAKERS: dict[str, Callable[[Path], None]] = {"report": make_report, "picker": make_picker}


def main(argv: list[str] | None = None) -> int:
    """Make the images named in ``argv`` (default: all of them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="IMAGE",
                        help=f"any of {', '.join(MAKERS)} (default: all)")
    names = parser.parse_args(argv).names or list(MAKERS)
    unknown = sorted(set(names) - set(MAKERS))
    if unknown:
        parser.error(f"no image named {', '.join(unknown)}; choose from {', '.join(MAKERS)}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"nbreplica-{name}-") as scratch:
            MAKERS[name](Path(scratch))
        print(f"made docs/{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

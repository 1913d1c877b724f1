"""Print pip constraints that pin every runtime dependency, and those of the `ray`
extra, to its declared minimum.

`pyproject.toml`'s `>=` bounds (and the `<` bound of Keras, the newest CI tests) are a
promise; CI installs exactly these versions in a
second virtual environment and runs the TensorFlow-dependent tests there.
"""

import re
import sys
import tomllib
from pathlib import Path

pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
project = pyproject["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["ray"]:
    match = re.fullmatch(
        r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)(\s*,\s*<\s*[0-9][0-9A-Za-z.]*)?",
        requirement)
    if match is None:
        sys.exit("Every dependency needs a plain '>=' minimum, optionally with a '<' bound. "
                 f"Received: {requirement!r}")
    print(f"{match[1]}=={match[2]}")

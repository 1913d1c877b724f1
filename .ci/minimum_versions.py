"""Print pip constraints that pin every runtime dependency, and those of the `ray`,
`mlflow` and `tensorboard` extras, to its declared minimum.

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
extras = project["optional-dependencies"]
for requirement in project["dependencies"] + [
        requirement for extra in ("ray", "mlflow", "tensorboard") for requirement in extras[extra]]:
    match = re.fullmatch(
        r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)(\s*,\s*<\s*[0-9][0-9A-Za-z.]*)?",
        requirement)
    if match is None:
        sys.exit("Every dependency needs a plain '>=' minimum, optionally with a '<' bound. "
                 f"Received: {requirement!r}")
    print(f"{match[1]}=={match[2]}")

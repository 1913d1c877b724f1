#!/usr/bin/env bash
# Runs the TensorFlow-dependent tests in a second virtual environment holding exactly
# the minimum version of every runtime dependency that pyproject.toml declares.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-minimum
python3 -m venv "$venv"
python3 .ci/minimum_versions.py > "$venv/constraints.txt"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c "$venv/constraints.txt" -e ".[test]"
echo "Declared minimums installed:"
"$venv/bin/python" -m pip freeze | grep -iFf <(sed 's/==.*//' "$venv/constraints.txt")
"$venv/bin/python" -m pytest -p no:cacheprovider "$@" \
  tests/replicate tests/test_accelerators.py tests/test_public_api.py \
  tests/test_import_structure.py tests/bench tests/notebook/test_training.py

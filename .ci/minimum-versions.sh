#!/usr/bin/env bash
# Runs the whole test suite again in a second virtual environment holding exactly the
# minimum version of every runtime dependency that pyproject.toml declares.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-minimum
python3 -m venv "$venv"
python3 .ci/minimum_versions.py > "$venv/constraints.txt"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c "$venv/constraints.txt" -e ".[test]"
echo "Declared minimums installed:"
names=$(sed 's/==.*//' "$venv/constraints.txt" | paste -sd'|')
"$venv/bin/python" -m pip freeze | grep -iE "^($names)=="
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"

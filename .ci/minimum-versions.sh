#!/usr/bin/env bash
# Runs the whole test suite again in a second virtual environment holding exactly the
# minimum version of every runtime dependency that pyproject.toml declares.
# `--install-only` sets the environment up and stops; `--tests-only` runs the suite in
# an environment set up before. Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-minimum
step=all
case "${1:-}" in
  --install-only|--tests-only) step=$1; shift ;;
esac

if [ "$step" != --tests-only ]; then
  python3 -m venv "$venv"
  python3 .ci/minimum_versions.py > "$venv/constraints.txt"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$venv/constraints.txt" -e ".[test]"
  echo "Declared minimums installed:"
  names=$(sed 's/==.*//' "$venv/constraints.txt" | paste -sd'|')
  "$venv/bin/python" -m pip freeze | grep -iE "^($names)=="
fi
if [ "$step" != --install-only ]; then
  "$venv/bin/python" -m pytest -p no:cacheprovider --basetemp="$venv/pytest-tmp" "$@"
fi

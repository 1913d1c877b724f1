#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine and runs it:
# Debian's Chromium (for the real-browser widget test), nbreplica with its test
# extras (JupyterLab, Playwright, nbclient, ...), then pytest with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
python3 -m pip install -q -e ".[test]"
python3 -m pytest "$@"

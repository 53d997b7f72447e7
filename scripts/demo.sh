#!/usr/bin/env bash
# The main job: set up and build (if needed), then compile a UniSparse
# attention end to end and run it, printing density, recall, accuracy against
# dense attention and time. Arguments go to `python -m unisparse.demo`
# (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
"$ROOT/scripts/setup.sh"
PYTHONPATH="$ROOT/python" UNISPARSE_BUILD_DIR="${UNISPARSE_BUILD_DIR:-$ROOT/build}" \
  exec "${PYTHON:-python3}" -m unisparse.demo "$@"

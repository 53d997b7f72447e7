#!/usr/bin/env bash
# Builds everything and runs every test suite:
#   1. lit (check-unisparse): dialect, passes, conversions, pipelines, the C API,
#      the runtime unit tests, and the CPU integration tests (compiled code
#      executed and compared with the NumPy reference);
#   2. pytest test/python (the NumPy reference and the Python package);
#   3. the runtime built alone, without MLIR (as a GPU machine builds it),
#      with its CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${UNISPARSE_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
PY=${PYTHON:-python3}

echo "== lit: check-unisparse"
ninja -C "$BUILD" check-unisparse

echo "== pytest: test/python"
PYTHONPATH="$ROOT/python" UNISPARSE_BUILD_DIR="$BUILD" "$PY" -m pytest -q "$ROOT/test/python"

echo "== runtime alone (no MLIR)"
RT_BUILD="$BUILD/runtime-standalone"
cmake -G Ninja -S "$ROOT/runtime" -B "$RT_BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DUNISPARSE_RUNTIME_ENABLE_CUDA=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$RT_BUILD" | tail -n 1
ctest --test-dir "$RT_BUILD" --output-on-failure

#!/usr/bin/env bash
# Builds everything and runs every test suite:
#   1. lit (check-unisparse): dialect, passes, conversions, pipelines, the C API,
#      the runtime unit tests, and the CPU integration tests (compiled code
#      executed and compared with the NumPy reference);
#   2. pytest test/python (the NumPy reference and the Python package);
#   3. the runtime built alone, without MLIR (as a GPU machine builds it),
#      with its CTest suite, and again under ASan + UBSan;
#   4. the generated docs are up to date with the ODS files, the C, C++
#      and CUDA sources are clang-formatted (.clang-format: LLVM), and the
#      Python sources pass ruff's lint and format check (pyproject.toml);
#   5. the fuzz smoke test: unisparse-fuzz (ASan + UBSan + libFuzzer) for
#      $UNISPARSE_FUZZ_SECONDS (default 60) seconds from the lit-test seeds.
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

echo "== runtime alone under ASan + UBSan"
RT_SAN="$BUILD/runtime-sanitized"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -G Ninja -S "$ROOT/runtime" -B "$RT_SAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUNISPARSE_RUNTIME_ENABLE_CUDA=OFF -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
  -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$RT_SAN" | tail -n 1
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$RT_SAN" --output-on-failure

echo "== generated docs"
UNISPARSE_BUILD_DIR="$BUILD" "$ROOT/scripts/gen-docs.sh" --check

echo "== clang-format"
"$ROOT/scripts/check-format.sh"

echo "== ruff (lint + format check)"
PY_SOURCES=(python test/python test/Integration test/Pipelines/Inputs scripts bench)
(cd "$ROOT" && "$PY" -m ruff check "${PY_SOURCES[@]}" && "$PY" -m ruff format --check "${PY_SOURCES[@]}")

echo "== fuzz smoke test"
UNISPARSE_FUZZ_BUILD_DIR="${UNISPARSE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}" \
  "$ROOT/scripts/fuzz.sh" "${UNISPARSE_FUZZ_SECONDS:-60}"

#!/usr/bin/env bash
# Builds everything and runs every test suite:
#   1. lit (check-unisparse): dialect, passes, conversions, pipelines, the C API,
#      the runtime unit tests, and the CPU integration tests (compiled code
#      executed and compared with the NumPy reference);
#   2. pytest test/python (the NumPy reference and the Python package, with
#      a Hypothesis property test of the public API on a fixed budget);
#   3. the runtime built alone, without MLIR (as a GPU machine builds it),
#      with its CTest suite, and again under ASan + UBSan;
#   4. the generated docs are up to date with the ODS files, the C, C++
#      and CUDA sources are clang-formatted (.clang-format: LLVM), and the
#      Python sources pass ruff's lint and format check (pyproject.toml);
#   5. the fuzz smoke test: unisparse-fuzz (ASan + UBSan + libFuzzer) for
#      $UNISPARSE_FUZZ_SECONDS (default 60) seconds from the lit-test seeds;
#   6. the CMake package: installed to a fresh prefix, examples/embedding
#      built against it alone, and its lit test;
#   7. the wheel: built (scripts/build-wheel.sh), installed into a fresh venv
#      and smoke-tested there with no build tree in sight (test/wheel/smoke.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${UNISPARSE_BUILD_DIR:-$ROOT/build}
# The wheel's build directory sits beside $BUILD: with paths relative to one
# base, ccache serves it the objects the development build compiled.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$BUILD")}
"$ROOT/scripts/setup.sh"
PY=${PYTHON:-python3}
LLVM=/usr/lib/llvm-22

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
PY_SOURCES=(python test scripts bench examples)
(cd "$ROOT" && "$PY" -m ruff check "${PY_SOURCES[@]}" && "$PY" -m ruff format --check "${PY_SOURCES[@]}")

echo "== fuzz smoke test"
UNISPARSE_FUZZ_BUILD_DIR="${UNISPARSE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}" \
  "$ROOT/scripts/fuzz.sh" "${UNISPARSE_FUZZ_SECONDS:-60}"

echo "== CMake package: install to a fresh prefix, build examples/embedding against it"
PREFIX="$BUILD/install-test"
EMB="$BUILD/embedding-test"
rm -rf "$PREFIX" "$EMB"
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
cmake -G Ninja -S "$ROOT/examples/embedding" -B "$EMB" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DLLVM_EXTERNAL_LIT=$LLVM/bin/lit \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$EMB" check-embedding

echo "== wheel: build, install into a fresh venv, smoke test there (CPU)"
"$ROOT/scripts/build-wheel.sh" --cuda auto --out "$BUILD/wheels"
SMOKE=$(mktemp -d /tmp/unisparse-wheel-test.XXXXXX)
trap 'rm -rf "$SMOKE"' EXIT
# numpy and torch from this environment; unisparse only from the wheel.
"$PY" -m venv --system-site-packages "$SMOKE/venv"
"$SMOKE/venv/bin/python" -m pip install --quiet --no-deps "$BUILD"/wheels/unisparse-*.whl
mkdir -m 700 "$SMOKE/cache" "$SMOKE/cwd"
(cd "$SMOKE/cwd" && env -u UNISPARSE_BUILD_DIR -u PYTHONPATH UNISPARSE_CACHE_DIR="$SMOKE/cache" \
  "$SMOKE/venv/bin/python" "$ROOT/test/wheel/smoke.py")

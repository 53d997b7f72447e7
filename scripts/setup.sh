#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine (if missing),
# then configures and builds it in ./build. Idempotent; safe to re-run.
#
#   UNISPARSE_BUILD_DIR   build directory (default: ./build)
#   UNISPARSE_JOBS        parallel build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${UNISPARSE_BUILD_DIR:-$ROOT/build}
JOBS=${UNISPARSE_JOBS:-$(nproc)}
LLVM=/usr/lib/llvm-22

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: LLVM/MLIR 22 from Debian, Ninja, ccache.
APT_PKGS=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22 lld-22 ninja-build ccache cmake)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages (python3 on PATH runs the tests and the demo).
PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, pytest" 2>/dev/null; then
  say "installing numpy and pytest with pip"
  "$PY" -m pip install -q numpy pytest
fi

# Configure once, build always (ccache + Ninja keep rebuilds fast).
if [ ! -f "$BUILD/build.ninja" ]; then
  say "configuring $BUILD"
  cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=$LLVM/lib/cmake/mlir -DLLVM_EXTERNAL_LIT=$LLVM/bin/lit \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    -DMLIR_LINK_MLIR_DYLIB=ON -DPython3_EXECUTABLE="$(command -v "$PY")" \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
fi
say "building ($JOBS jobs)"
ninja -C "$BUILD" -j"$JOBS" | tail -n 1

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

# System packages: LLVM/MLIR 22 from Debian (clang-format-22 for the format
# check; liblld-22-dev: lld's libraries, which unisparse-compile links in),
# Ninja, ccache.
APT_PKGS=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22 lld-22 liblld-22-dev
          clang-format-22 ninja-build ccache cmake)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages (python3 on PATH runs the tests, the demo and the fidelity
# harness; Hypothesis drives the property-based test of the public API).
# PyPI's Linux torch wheel is the CUDA build; its CUDA libraries are
# needed to load it even on a CPU-only machine, but triton, cuda-bindings and
# the cuda-toolkit meta-package are not, so torch and exactly the CUDA runtime
# wheels its libraries link are installed with --no-deps (pinned to the
# versions torch 2.15.0 declares); everything else resolves normally.
# Measured on a fresh venv without a pip cache: 117 s (49 s + 68 s), ~2.6 GB
# downloaded, 4.7 GB installed.
PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, pytest, hypothesis, matplotlib, transformers, torch" 2>/dev/null; then
  say "installing Python packages with pip (numpy pytest hypothesis matplotlib transformers torch)"
  "$PY" -m pip install -q numpy pytest hypothesis matplotlib transformers "setuptools>=77.0.3" \
    filelock "typing-extensions>=4.13" "sympy>=1.13.3" networkx jinja2 fsspec
  "$PY" -m pip install -q --no-deps torch==2.15.0 \
    nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86 \
    nvidia-cublas==13.4.1.3 nvidia-cufft==12.2.0.57 nvidia-cufile==1.17.1.22 \
    nvidia-cusolver==12.2.0.11 nvidia-cusparse==12.7.10.12 nvidia-nvjitlink==13.5.37 \
    nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
    nvidia-nvshmem-cu13==3.7.2
fi

# ruff lints and format-checks the Python sources (scripts/test.sh); pinned,
# so that a new release's rules cannot fail a clean tree.
RUFF_VERSION=0.17.5
if [ "$("$PY" -m ruff --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]; then
  say "installing ruff $RUFF_VERSION with pip"
  "$PY" -m pip install -q "ruff==$RUFF_VERSION"
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

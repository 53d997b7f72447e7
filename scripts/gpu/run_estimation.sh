#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root, after prepare.sh compiled
# .device/aot/ here: the estimation's checks (scripts/gpu/check.py) and its
# benchmark (bench/bench_gpu_estimation.py), with logs under $OUT.
#
# The runtime is taken prebuilt from .device/rt/ when present (built where
# the compiler is, with nvcc: `scripts/gpu/prepare.sh --runtime`), which
# saves the GPU machine the CUDA build; otherwise it is built here.
#   run_estimation.sh [--check-only | --bench-only] [bench args...]
# CHECK_ONLY="name ..." checks only those configurations (check.py --only).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1
status=0
mode=all
case "${1:-}" in --check-only|--bench-only) mode=$1; shift ;; esac
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$LOGS/device.txt"
if [ -f .device/rt/libunisparse_runtime.so ]; then
  RT=$PWD/.device/rt/libunisparse_runtime.so
else
  BUILD=/tmp/unisparse-build-gpu
  cmake -S runtime -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a >"$LOGS/cmake.log" 2>&1 && ninja -C "$BUILD" >"$LOGS/build.log" 2>&1 \
    || { tail -30 "$LOGS/build.log"; exit 1; }
  RT=$(find "$BUILD" -name libunisparse_runtime.so | head -1)
fi
export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot
if [ "$mode" != --bench-only ]; then
  echo "=== checks against PyTorch and the CPU path"
  # shellcheck disable=SC2086  # CHECK_ONLY is a list of names
  python3 scripts/gpu/check.py ${CHECK_ONLY:+--only $CHECK_ONLY} 2>&1 | tee "$LOGS/check.txt" | grep -v "^PASS" | tail -40
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
if [ "$mode" != --check-only ]; then
  echo "=== estimation benchmark"
  UNISPARSE_COMMIT=$(cat .device/aot/COMMIT 2>/dev/null) \
    python3 bench/bench_gpu_estimation.py --e2e "$@" 2>&1 | tee "$LOGS/bench_estimation.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
echo "run_estimation.sh status=$status"
exit $status

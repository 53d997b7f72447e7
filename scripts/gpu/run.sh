#!/usr/bin/env bash
# Run ON THE GPU MACHINE (CUDA, CMake, ninja, PyTorch; no LLVM), from the repo
# root, after prepare.sh compiled .device/aot/ here. Builds the runtime with
# CUDA, runs its unit tests (also under compute-sanitizer memcheck), the
# checks against PyTorch (check.py) and, unless --no-bench, the benchmark.
# Logs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
BUILD=/tmp/unisparse-build-gpu
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "=== $*"; }

step "device"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$LOGS/device.txt"

step "build the runtime with CUDA"
cmake -S runtime -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$LOGS/cmake.log" 2>&1 \
  && ninja -C "$BUILD" >"$LOGS/build.log" 2>&1 || { tail -50 "$LOGS/cmake.log" "$LOGS/build.log"; exit 1; }
RT=$(find "$BUILD" -name libunisparse_runtime.so | head -1)
CUDA_TESTS=$(find "$BUILD" -name unisparse_runtime_cuda_tests -type f | head -1)
CPU_TESTS=$(find "$BUILD" -name unisparse_runtime_tests -type f | head -1)

step "runtime unit tests (CPU)"
"$CPU_TESTS" 2>&1 | tail -3 | tee "$LOGS/cpu_tests.txt" || status=1
step "runtime CUDA tests"
"$CUDA_TESTS" 2>&1 | tee "$LOGS/cuda_tests.txt" | tail -40; [ "${PIPESTATUS[0]}" = 0 ] || status=1
step "compute-sanitizer memcheck"
# API errors are not reported: the mgpu error-path tests provoke them on
# purpose (unknown kernel name, out of memory, bad PTX/image, bad device).
compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 "$CUDA_TESTS" >"$LOGS/memcheck.txt" 2>&1; rc=$?
grep -v "^\[  OK  \]" "$LOGS/memcheck.txt" | head -60; [ $rc = 0 ] || { echo "memcheck rc=$rc"; status=1; }

step "checks against PyTorch"
export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot
python3 scripts/gpu/check.py 2>&1 | tee "$LOGS/check.txt" | tail -60; [ "${PIPESTATUS[0]}" = 0 ] || status=1

step "Python layer on CUDA (torch op, torch.compile, CUDA graphs, Hugging Face)"
python3 scripts/gpu/check_torch.py 2>&1 | tee "$LOGS/check_torch.txt" | tail -30; [ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ "${1:-}" != "--no-bench" ]; then
  step "benchmark"
  UNISPARSE_COMMIT=$(cat .device/aot/COMMIT 2>/dev/null) \
    python3 bench/bench_gpu.py --out "$LOGS/bench.md" 2>&1 | tee "$LOGS/bench.txt" | tail -30
fi
echo "run.sh status=$status"
exit $status

#!/usr/bin/env bash
# Prepared in session 14, not run (no device time left): the default's outlier
# scoring kernel at key tile 16 (3 CTAs an SM by ptxas) against key tile 32, in
# one process, and the check of its scores.
#   here:        bash bench/logs/2026-12-05-h200-s14-a/next_kt16.sh prepare
#   on the H200: bash bench/logs/2026-12-05-h200-s14-a/next_kt16.sh device
# (carry .device/aot_kt16; the runtime as run.sh builds it, or .device/rt1)
set -uo pipefail
cd "$(dirname "$0")/../../.."
case "${1:?prepare | device}" in
  prepare)
    set -e
    mkdir -p .device/aot_kt16
    python3 scripts/gpu/compile_all.py --out .device/aot_kt16 --only tuning \
      --names tune_peaked tune_peaked_kt16 tune_peaked_kt16_c396
    git rev-parse --short HEAD > .device/aot_kt16/COMMIT ;;
  device)
    LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
    if [ ! -f .device/rt1/libunisparse_runtime.so ]; then
      cmake -S runtime -B /tmp/rtb -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90a > "$LOGS/rt_cmake.log" 2>&1 && ninja -C /tmp/rtb > "$LOGS/rt_build.log" 2>&1
      mkdir -p .device/rt1 && cp "$(find /tmp/rtb -name libunisparse_runtime.so | head -1)" .device/rt1/
    fi
    export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
      UNISPARSE_AOT_DIR=$PWD/.device/aot_kt16 UNISPARSE_COMMIT=$(cat .device/aot_kt16/COMMIT)
    for r in 1 2; do
      timeout 200 python3 bench/bench_gpu_estimation.py --tuning \
        --only tune_peaked tune_peaked_kt16 tune_peaked_kt16_c396 --n 32768 131072 > "$LOGS/kt16_$r.txt" 2>&1
      grep -E "^tune_" "$LOGS/kt16_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-200
    done ;;
esac

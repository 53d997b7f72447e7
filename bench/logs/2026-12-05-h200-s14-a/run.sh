#!/usr/bin/env bash
# Session 14, first H200 call: build the CUDA runtime of this commit on the
# GPU machine (16 cores; the .so comes back under $OUT/rt for later calls),
# then scripts/gpu/run_default.sh ncu (per-kernel ncu of the default's
# layout() at 32K and 128K) and, if time is left, run_default.sh check (the
# runtime's host cache touches the CUDA path's host allocations).
#   bash bench/logs/2026-12-05-h200-s14-a/run.sh [ncu] [check] [bench] [ncu:TAG:REGEX]
# (ncu:TAG:REGEX: ncu_some.sh of the kernels matching REGEX; e2e: the whole call at peak 2.5)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS/rt"
t0=$(date +%s)
if [ ! -f .device/rt1/libunisparse_runtime.so ]; then
  cmake -S runtime -B /tmp/rtb -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a > "$LOGS/rt_cmake.log" 2>&1 \
    && ninja -C /tmp/rtb > "$LOGS/rt_build.log" 2>&1 || { tail -30 "$LOGS"/rt_*.log; exit 1; }
  mkdir -p .device/rt1 && cp "$(find /tmp/rtb -name libunisparse_runtime.so | head -1)" .device/rt1/
  cp .device/rt1/libunisparse_runtime.so "$LOGS/rt/"
  echo "runtime built in $(( $(date +%s) - t0 )) s"
fi
for s in "$@"; do
  echo "=== $s $(date +%T)"
  case "$s" in
    ncu:*) IFS=: read -r _ tag regex <<< "$s"
           bash bench/logs/2026-12-05-h200-s14-a/ncu_some.sh "$regex" "$tag" ;;
    e2e) # the whole call on the project's generator at peak 2.5 (RESULTS.md's
         # session-12 table's command), one process
         PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$(ls .device/rt*/libunisparse_runtime.so | head -1) \
           UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT) \
           timeout 300 python3 bench/bench_gpu_estimation.py --e2e --peak 2.5 --only est_default est_peaked_default \
           --n 32768 131072 > "$LOGS/e2e_peak25.txt" 2>&1
         grep -E "^est_|cuDNN|Error|density" "$LOGS/e2e_peak25.txt" | cut -c1-240 ;;
    ocompress) # the outlier compress alone against float64 (exact inputs: every
               # pick; structured: near ties only), its library compiled into
               # .device/aot_default by compile_all.py --only check --names outlier_compress
         PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$(ls .device/rt*/libunisparse_runtime.so | head -1) \
           UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout 200 python3 scripts/gpu/check.py --only outlier_compress \
           > "$LOGS/check_ocompress.txt" 2>&1
         grep -E "FAIL|passed" "$LOGS/check_ocompress.txt" | cut -c1-240 | tail -12 ;;
    *) scripts/gpu/run_default.sh "$s" ;;
  esac
done

#!/bin/bash
# Session 4 call 3: the merged main (separate epilogue default, one-test walk, antidiagonal tensor-core scoring,
# slash_refine on the GPU, block_select alone): checks, then the estimation benchmarks.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
echo "=== check (quick) $(date +%T)"
timeout 330 python3 scripts/gpu/check.py --quick > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "^FAIL|passed" $OUT/check.txt | cut -c1-260 | tail -14
echo "=== tuning (tune_before: d5af7c4 separate, old walk) $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 120 python3 bench/bench_gpu_estimation.py --tuning --only tune_before tune_default tune_fused --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "tuning rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -7
echo "=== estimation e2e $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 200 python3 bench/bench_gpu_estimation.py --e2e --only est_default est_antidiag est_antidiag_lse --n 32768 131072 > $OUT/bench.txt 2>&1; echo "bench rc=$?"
grep -vE "Warning|warn" $OUT/bench.txt | tail -12
echo "=== done $(date +%T)"

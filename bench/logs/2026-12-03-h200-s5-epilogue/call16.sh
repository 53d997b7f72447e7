#!/bin/bash
# Session 5 call 4: the one-pass score epilogue (row sums from the scoring kernel): tuning in one process,
# the quick check against the CPU path, the default estimator end to end against cuDNN.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot PYTHONPATH=$PWD/python
echo "=== tuning bench $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 240 python3 bench/bench_gpu_estimation.py --tuning --only tune_before tune_between tune_default --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "tuning rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -14
echo "=== check --quick $(date +%T)"
timeout 300 python3 scripts/gpu/check.py --quick > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-220 | tail -8
echo "=== e2e $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 150 python3 bench/bench_gpu_estimation.py --e2e --only est_default --n 32768 131072 > $OUT/e2e.txt 2>&1; echo "e2e rc=$?"
grep -vE "Warning|warn" $OUT/e2e.txt | tail -8
echo "=== done $(date +%T)"

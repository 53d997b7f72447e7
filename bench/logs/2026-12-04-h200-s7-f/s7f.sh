#!/bin/bash
# Session 7 call F: the outlier estimator's tensor-core scoring kernel (issue17-outliertc, AOT libraries from its
# head 03862d0): checks, then its timing next to the default; the slash_h32 check with the new negative control.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt9/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot10 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot10/COMMIT)
echo "=== outlier checks $(date +%T)"
timeout 130 python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_ch2_f16_d64 > $OUT/check_outlier.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_outlier.txt | cut -c1-260 | tail -16
echo "=== outlier bench $(date +%T)"
timeout 90 python3 bench/bench_gpu_estimation.py --only est_default est_outlier --n 32768 131072 > $OUT/bench_outlier.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/bench_outlier.txt | tail -6
echo "=== slash_h32 $(date +%T)"
UNISPARSE_AOT_DIR=$PWD/.device/aot9 UNISPARSE_COMMIT=$(cat .device/aot9/COMMIT) timeout 110 python3 scripts/gpu/check.py --only slash_h32_bf16_d128 > $OUT/check_slash_h32.txt 2>&1; echo "rc=$?"
grep -E "FAIL|PASS|passed" $OUT/check_slash_h32.txt | cut -c1-260 | tail -8
echo "=== done $(date +%T)"

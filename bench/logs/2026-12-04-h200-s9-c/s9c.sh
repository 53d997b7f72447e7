#!/bin/bash
# Session 9 call C: issue13-oscore128 (the outlier scoring kernel's folded logits, f16 pair stores, padded
# statistics): the outlier checks (+ the f32-partials form), then before / after / f32p in one process.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot_osc PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot_osc/COMMIT)
echo "=== checks $(date +%T)"
timeout 240 python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_ch2_f16_d64 outlier_f32p_bf16_d128 outlier_h32_bf16_d128 > $OUT/check_outlier.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_outlier.txt | cut -c1-240 | tail -14
echo "=== tuning $(date +%T)"
timeout 200 python3 bench/bench_gpu_estimation.py --tuning --only tune_outlier_before tune_outlier tune_outlier_f32p --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -8 | cut -c1-300
echo "=== done $(date +%T)"

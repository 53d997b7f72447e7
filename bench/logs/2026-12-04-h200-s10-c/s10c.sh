#!/bin/bash
# Session 10 call C: main after the merges (outlier scoring defaults tile factors + poly 2, the evidence kernel in
# registers, the negative control's fix): the outlier checks on the new defaults, slash_h32, the estimators in one
# process, end to end at 128K on the generator's peak 2.5.
set -u
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so
export UNISPARSE_AOT_DIR=$PWD/.device/s10/C UNISPARSE_COMMIT=$(cat .device/s10/C/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "=== outlier checks $(date +%T)"
timeout 200 python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_ch2_f16_d64 outlier_h32_bf16_d128 > $OUT/check_outlier.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed|composites" $OUT/check_outlier.txt | cut -c1-230 | tail -8
echo "=== slash_h32 $(date +%T)"
timeout 120 python3 scripts/gpu/check.py --only slash_h32_bf16_d128 > $OUT/check_slash_h32.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed|negative" $OUT/check_slash_h32.txt | cut -c1-230 | tail -6
echo "=== bench $(date +%T)"
timeout 120 python3 bench/bench_gpu_estimation.py --only est_default est_outlier est_peaked --n 32768 131072 > $OUT/bench.txt 2>&1; echo "rc=$?"
grep -E "^est_|Error" $OUT/bench.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-260
echo "=== e2e $(date +%T)"
timeout 240 python3 bench/bench_gpu_estimation.py --e2e --peak 2.5 --only est_default est_peaked --n 131072 > $OUT/e2e.txt 2>&1; echo "rc=$?"
grep -E "end to end|Error" $OUT/e2e.txt | cut -c1-300
echo "=== done $(date +%T)"

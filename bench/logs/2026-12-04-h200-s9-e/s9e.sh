#!/bin/bash
# Session 9 call E: (1) the outlier_h32 check with the library of main before issue13-oscore128 (is the FAIL of
# call C the kernel's or the check's?); (2) issue17-refine2: slash checks (bf16 d128, ch2 f16 d64) and the refine
# stage before/after in one process.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so
echo "=== h32 before $(date +%T)"
UNISPARSE_AOT_DIR=$PWD/.device/aot_h32b UNISPARSE_COMMIT=393029f timeout 150 python3 scripts/gpu/check.py --only outlier_h32_bf16_d128 > $OUT/check_h32_before.txt 2>&1; echo "rc=$?"
grep -E "FAIL|PASS|passed" $OUT/check_h32_before.txt | cut -c1-260 | tail -6
export UNISPARSE_AOT_DIR=$PWD/.device/aot_refine UNISPARSE_COMMIT=$(cat .device/aot_refine/COMMIT)
echo "=== slash checks $(date +%T)"
timeout 200 python3 scripts/gpu/check.py --only slash_bf16_d128 slash_ch2_f16_d64 > $OUT/check_slash.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_slash.txt | cut -c1-260 | tail -12
echo "=== refine bench $(date +%T)"
timeout 150 python3 bench/bench_gpu_estimation.py --tuning --only tune_refine_before tune_refine --n 32768 131072 > $OUT/bench_refine.txt 2>&1; echo "rc=$?"
grep -E "^tune_refine|Error" $OUT/bench_refine.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-240
echo "=== done $(date +%T)"

#!/bin/bash
# Session 10 call A: issue13 mufu branches (A = issue13-oscore-mufu, B = issue13-mufu2): checks of the polynomial +
# tile-factor entries, outlier_h32 on the GPU's own composites (main's kernel: A's compiler with both options off),
# the tuning variants of both branches in one process; issue17-refine3 / refine3b: layouts before/after and the refine
# stage timed in one process.
set -u
cd "$(dirname "$0")/../.."
R0=$PWD
export PYTHONUNBUFFERED=1 UNISPARSE_CUDA_RUNTIME=$R0/.device/rt1/libunisparse_runtime.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
S=$R0/.device/s10
cd $S/A; export PYTHONPATH=$PWD/python UNISPARSE_AOT_DIR=$PWD/aot UNISPARSE_COMMIT=$(cat aot/COMMIT)
echo "=== A checks $(date +%T)"
timeout 200 python3 scripts/gpu/check.py --only outlier_poly_bf16_d128 outlier_h32_bf16_d128 > $OUT/checkA.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/checkA.txt | cut -c1-240 | tail -12
echo "=== A+B tuning $(date +%T)"
timeout 200 python3 bench/bench_gpu_estimation.py --tuning --only tune_outlier tune_outlier_tf tune_outlier_tfB tune_outlier_poly2 tune_outlier_poly2_tfB --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "rc=$?"
grep -E "^tune_|Error" $OUT/tuning.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-230
cd $S/B; export PYTHONPATH=$PWD/python UNISPARSE_AOT_DIR=$PWD/aot UNISPARSE_COMMIT=$(cat aot/COMMIT)
echo "=== B check $(date +%T)"
timeout 100 python3 scripts/gpu/check.py --only outlier_poly_bf16_d128 > $OUT/checkB.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/checkB.txt | cut -c1-240 | tail -6
cd $S/R; export PYTHONPATH=$PWD/python UNISPARSE_AOT_DIR=$PWD/aot UNISPARSE_COMMIT=$(cat aot/COMMIT)
echo "=== R same $(date +%T)"
timeout 100 python3 scripts/gpu/refine_same.py > $OUT/same.txt 2>&1; echo "rc=$?"
grep -E "PASS|FAIL|DIFF|Error" $OUT/same.txt | cut -c1-240 | tail -8
timeout 80 python3 scripts/gpu/refine_same.py --libs tune_refine tune_refine_hoist > $OUT/same_hoist.txt 2>&1; echo "rc=$?"
grep -E "PASS|FAIL|DIFF|Error" $OUT/same_hoist.txt | cut -c1-240 | tail -6
timeout 80 python3 scripts/gpu/refine_same.py --report --libs tune_refine_3bbase tune_refine_staged > $OUT/same_staged.txt 2>&1; echo "rc=$?"
grep -E "PASS|FAIL|DIFF|Error|differ" $OUT/same_staged.txt | cut -c1-240 | tail -8
echo "=== R bench $(date +%T)"
timeout 150 python3 bench/bench_gpu_estimation.py --tuning --only tune_refine_before tune_refine_3bbase tune_refine tune_refine_hoist tune_refine_staged --n 32768 131072 > $OUT/bench_refine.txt 2>&1; echo "rc=$?"
grep -E "^tune_refine|Error" $OUT/bench_refine.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-230
echo "=== done $(date +%T)"

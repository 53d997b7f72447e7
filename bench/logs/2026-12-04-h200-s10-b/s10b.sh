#!/bin/bash
# Session 10 call B: issue13-oscore-mufu's polynomial share (1, 2, 4 of 8) with tile factors against the kernel as
# merged and the default estimator's scoring, in one process, twice; issue17-refine3's slash checks (all five
# configurations: the third rewrite + the evidence kernel in registers).
set -u
cd "$(dirname "$0")/../.."
R0=$PWD
export PYTHONUNBUFFERED=1 UNISPARSE_CUDA_RUNTIME=$R0/.device/rt1/libunisparse_runtime.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
S=$R0/.device/s10
cd $S/A; export PYTHONPATH=$PWD/python UNISPARSE_AOT_DIR=$PWD/aot UNISPARSE_COMMIT=$(cat aot/COMMIT)
for r in 1 2; do
echo "=== A tuning $r $(date +%T)"
timeout 150 python3 bench/bench_gpu_estimation.py --tuning --only tune_default tune_outlier tune_outlier_tf tune_outlier_poly1 tune_outlier_poly2 tune_outlier_poly4 --n 32768 131072 > $OUT/tuning$r.txt 2>&1; echo "rc=$?"
grep -E "^tune_|Error" $OUT/tuning$r.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-150
done
cd $S/R; export PYTHONPATH=$PWD/python UNISPARSE_AOT_DIR=$PWD/aot UNISPARSE_COMMIT=$(cat aot/COMMIT)
echo "=== R check $(date +%T)"
timeout 380 python3 scripts/gpu/check.py --only slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 slash_peaked_bf16_d128 slash_h32_bf16_d128 > $OUT/check_slash.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_slash.txt | cut -c1-240 | tail -12
echo "=== done $(date +%T)"

#!/bin/bash
# Session 6 call C: keyloop (f16 partial sums etc.) against main before it, in one process; the refinement kernels'
# timing and checks; the keyloop's checks.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot6 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot6/COMMIT)
echo "=== tuning $(date +%T)"
timeout 100 python3 bench/bench_gpu_estimation.py --tuning --only tune_keyloop_before tune_default tune_partials_f32 --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -12
echo "=== estimation e2e $(date +%T)"
timeout 150 python3 bench/bench_gpu_estimation.py --e2e --only est_default est_refine est_refine_loops --n 32768 131072 > $OUT/e2e.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/e2e.txt | tail -16
echo "=== check $(date +%T)"
timeout 290 python3 scripts/gpu/check.py --only select default_f32p_bf16_d128 default_f32p_fused_bf16_d128 qmax_bf16_d128 rk2_f16_d64 default_chunk_bf16_d128 antidiag_bf16_d128 antidiag_lse_max_bf16_d128 slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 slash_loops_bf16_d128 slash_peaked_bf16_d128 slash_h32_bf16_d128 default_bf16_d128 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-240 | tail -14
echo "=== done $(date +%T)"

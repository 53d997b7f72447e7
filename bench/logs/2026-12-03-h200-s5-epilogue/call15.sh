#!/bin/bash
# Session 5 call 3: the vectorized score epilogue (a key tile per thread, 16-byte loads, 4 CTAs/SM): tuning and the
# checks of every configuration that runs the separate epilogue.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot PYTHONPATH=$PWD/python
echo "=== tuning bench $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 200 python3 bench/bench_gpu_estimation.py --tuning --only tune_before tune_between tune_default --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "tuning rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -8
echo "=== check $(date +%T)"
timeout 300 python3 scripts/gpu/check.py --only default_bf16_d128 qmax_bf16_d128 rk2_f16_d64 default_chunk_bf16_d128 rk2_chunk_f16_d64 antidiag_lse_max_bf16_d128 antidiag_bf16_d128 antidiag_ch2_f16_d64 antidiag_lse_ch4_bf16_d64 long_bf16_d64 gqa_bf16_d128 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-220 | tail -8
echo "=== done $(date +%T)"

#!/bin/bash
# Session 6 call D: the fused query pooling against the unfused build (main after keyloop) in one process; its checks.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot7 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot7/COMMIT)
echo "=== tuning $(date +%T)"
timeout 100 python3 bench/bench_gpu_estimation.py --tuning --only tune_keyloop_before tune_unfused tune_qfuse --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -8
echo "=== e2e $(date +%T)"
timeout 60 python3 bench/bench_gpu_estimation.py --e2e --only est_default --n 32768 131072 > $OUT/e2e.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/e2e.txt | tail -5
echo "=== check $(date +%T)"
timeout 100 python3 scripts/gpu/check.py --only qfuse_bf16_d128 qfuse_ch2_f16_d64 qfuse_ch4_bf16_d128 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-240 | tail -10
echo "=== done $(date +%T)"

#!/bin/bash
# Session 8 call C: issue 17's three branches merged (s8): the outlier compress kernels, the outlier scoring in
# 1.5 passes, the slash refinement's second rewrite. Bench first, then the checks.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot2 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot2/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "=== bench $(date +%T)"
timeout 150 python3 bench/bench_gpu_estimation.py --only est_default est_outlier est_refine --n 32768 131072 > $OUT/bench.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/bench.txt | tail -10
echo "=== outlier compress check $(date +%T)"
timeout 100 python3 scripts/gpu/check.py --only outlier_compress > $OUT/check_ocompress.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed|tie" $OUT/check_ocompress.txt | cut -c1-240 | tail -12
echo "=== outlier + slash checks $(date +%T)"
timeout 150 python3 scripts/gpu/check.py --only outlier_bf16_d128 slash_bf16_d128 > $OUT/check_os.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_os.txt | cut -c1-240 | tail -14
echo "=== slash_h32 $(date +%T)"
timeout 160 python3 scripts/gpu/check.py --only slash_h32_bf16_d128 > $OUT/check_slash_h32.txt 2>&1; echo "rc=$?"
grep -E "FAIL|PASS|passed|negative|groups" $OUT/check_slash_h32.txt | cut -c1-240 | tail -10
echo "=== done $(date +%T)"

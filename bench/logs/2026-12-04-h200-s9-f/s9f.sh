#!/bin/bash
# Session 9 call F: the merged s9 (issue13-oscore128 + issue17-refine2 + issue17-ocompress2): the rewritten outlier
# compress kernels' check, the outlier end-to-end checks at 1000 / 4099 tokens (scores against float64 on the GPU's
# own composites), and est_default / est_outlier / est_peaked at 32K and 128K in one process.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot9
export UNISPARSE_COMMIT=$(cat .device/aot9/COMMIT)
echo "=== outlier_compress $(date +%T)"
timeout 90 python3 scripts/gpu/check.py --only outlier_compress > $OUT/check_ocompress.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed" $OUT/check_ocompress.txt | cut -c1-260 | tail -8
echo "=== outlier_bf16_d128 $(date +%T)"
timeout 80 python3 scripts/gpu/check.py --only outlier_bf16_d128 > $OUT/check_outlier.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed|composites" $OUT/check_outlier.txt | cut -c1-260 | tail -8
echo "=== bench $(date +%T)"
timeout 100 python3 bench/bench_gpu_estimation.py --only est_default est_outlier est_peaked --n 32768 131072 > $OUT/bench.txt 2>&1; echo "rc=$?"
grep -E "^est_|Error" $OUT/bench.txt | sed -E 's/ \(block=[^)]*\)//' | cut -c1-260
echo "=== done $(date +%T)"

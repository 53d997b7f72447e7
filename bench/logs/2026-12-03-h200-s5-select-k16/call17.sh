#!/bin/bash
# Session 5 call 5: block_select v4 (tuning against v3, exact checks), slash_refine on the GPU, the k16 kernel variants.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot PYTHONPATH=$PWD/python
echo "=== tuning $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 60 python3 bench/bench_gpu_estimation.py --tuning --only tune_select_v3 tune_default --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "tuning rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -5
echo "=== check $(date +%T)"
timeout 170 python3 scripts/gpu/check.py --only select slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 default_bf16_d128 noncausal_f16_d64 long_bf16_d64 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-220 | tail -8
V=$PWD/.device/variants
echo "=== variant tests $(date +%T)"
mkdir -p $OUT/k && OUT=$OUT/k VARIANTS="k16u=$V/k16u k16r=$V/k16r k16rp2=$V/k16rp2 k16rp4=$V/k16rp4" timeout 110 scripts/gpu/run_kernels.sh tests 2>&1 | tail -10
echo "=== variant bench $(date +%T)"
mkdir -p $OUT/kb && OUT=$OUT/kb VARIANTS="k15grid2=$V/k15grid2 k16u=$V/k16u k16r=$V/k16r k16rp2=$V/k16rp2 k16rp4=$V/k16rp4" \
  BENCH_ARGS="--kernels sm90 --head-dims 64 128 --budget-ms 250 --no-flex" timeout 170 scripts/gpu/run_kernels.sh bench 2>&1 | tail -26
echo "=== done $(date +%T)"

#!/bin/bash
# Session 4 call 2b: FA4 assembled; scoring chunks tuning; kernel variants vs FA4 in one run.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
ls /tmp/fa4 || echo "no first half"
mkdir -p /tmp/fa4site && cat /tmp/fa4/fa4part.aa .device/fa4b/fa4part.ab | xz -d | tar x -C /tmp/fa4site && echo "fa4 unpacked"
FA4PATH=/tmp/fa4site/site:/tmp/fa4site/site/nvidia_cutlass_dsl/dsl_packages
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
echo "=== tuning bench $(date +%T)"
PYTHONPATH=$PWD/python UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 220 python3 bench/bench_gpu_estimation.py --tuning --n 32768 131072 > $OUT/tuning.txt 2>&1; echo "tuning rc=$?"
grep -vE "Warning|warn" $OUT/tuning.txt | tail -12
echo "=== check (chunk configs) $(date +%T)"
PYTHONPATH=$PWD/python timeout 170 python3 scripts/gpu/check.py --only default_sep_bf16_d128 qmax_sep_bf16_d128 rk2_sep_f16_d64 default_chunk_bf16_d128 rk2_chunk_f16_d64 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-200 | tail -8
echo "=== variants + FA4 $(date +%T)"
V=$PWD/.device/variants
PYTHONPATH=$FA4PATH python3 -c "from flash_attn.cute import flash_attn_func; print('fa4 import ok')" 2>&1 | tail -2
mkdir -p $OUT/k && PYTHONPATH=$FA4PATH OUT=$OUT/k VARIANTS="v7r=$V/v7r k15grid=$V/k15grid k15pers=$V/k15pers" \
  BENCH_ARGS="--kernels sm90 --head-dims 128 64 --budget-ms 500 --fa4" timeout 330 scripts/gpu/run_kernels.sh bench 2>&1 | tail -30
echo "=== done $(date +%T)"

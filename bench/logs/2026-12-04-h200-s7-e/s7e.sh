#!/bin/bash
# Session 7 call E: main b08e438 (host32k + refine2 merged): CUDA tests of its runtime; the host part (--host); the
# pooling variants; the refinement's new kernels (bench + checks); quick checks of the default; end to end on the
# project's generator at 128K, peak 2.5.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt9/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot9 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot9/COMMIT)
echo "=== cuda tests $(date +%T)"
LD_LIBRARY_PATH=$PWD/.device/rt9 timeout 60 .device/rt9/unisparse_runtime_cuda_tests > $OUT/cuda_tests.txt 2>&1; echo "rc=$?"; tail -3 $OUT/cuda_tests.txt
echo "=== host $(date +%T)"
timeout 90 python3 bench/bench_gpu_estimation.py --host --only est_default --n 32768 131072 > $OUT/host.txt 2>&1; echo "rc=$?"; grep -vE "Warning|warn" $OUT/host.txt | tail -30
echo "=== tuning + refine bench $(date +%T)"
timeout 80 python3 bench/bench_gpu_estimation.py --tuning --only tune_qfuse tune_noprefetch tune_unfused --n 32768 131072 > $OUT/tune.txt 2>&1; echo "rc=$?"; grep -vE "Warning|warn" $OUT/tune.txt | tail -7
timeout 80 python3 bench/bench_gpu_estimation.py --only est_default est_refine --n 32768 131072 > $OUT/refine.txt 2>&1; echo "rc=$?"; grep -vE "Warning|warn" $OUT/refine.txt | tail -5
echo "=== checks $(date +%T)"
timeout 60 python3 scripts/gpu/check.py --quick --only default_bf16_d128 qfuse_bf16_d128 qfuse_bf16_d128_unfused > $OUT/check_quick.txt 2>&1; echo "rc=$?"; grep -E "FAIL|passed" $OUT/check_quick.txt | cut -c1-220 | tail -5
timeout 200 python3 scripts/gpu/check.py --only slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 slash_peaked_bf16_d128 slash_h32_bf16_d128 > $OUT/check_slash.txt 2>&1; echo "rc=$?"; grep -E "FAIL|passed|groups|negative" $OUT/check_slash.txt | cut -c1-240 | tail -14
echo "=== e2e generator $(date +%T)"
timeout 110 python3 bench/bench_gpu_estimation.py --e2e --only est_default --n 131072 --peak 2.5 > $OUT/e2e.txt 2>&1; echo "rc=$?"; grep -vE "Warning|warn" $OUT/e2e.txt | tail -4
echo "=== done $(date +%T)"
